"""The data: folder layouts and splits, the decode pipeline, image facts, the data audit, synthetic data. Imports only the foundation.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
