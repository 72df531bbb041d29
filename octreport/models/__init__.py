"""The models: architectures, training, loading and saving with the sidecar, input conventions, tf.distribute.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
