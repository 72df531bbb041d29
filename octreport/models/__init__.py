"""Floor 6, models: architectures, training, loading and saving with the sidecar, input conventions, tf.distribute.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
