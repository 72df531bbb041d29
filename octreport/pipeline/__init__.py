"""Floor 11, the pipeline: a run top to bottom (run.py), its stages, and the one publisher of every report file.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
