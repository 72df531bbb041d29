"""Floor 3, engine: what a Keras model holds and computes: conv layers found by type, activations, filters, Grad-CAM, occlusion, layer health. Arrays in, frozen results out.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
