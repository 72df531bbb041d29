"""The engine: what a Keras model holds and computes: conv layers found by type, activations, filters, Grad-CAM, occlusion, layer health. Arrays in, frozen results out.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
