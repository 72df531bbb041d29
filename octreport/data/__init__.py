"""Floor 2, data: folder layouts and splits, the decode pipeline, image facts, the data audit, synthetic data. Imports only the foundation.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
