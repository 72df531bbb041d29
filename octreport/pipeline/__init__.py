"""The the pipeline: a run top to bottom (run.py), its stages, and the one publisher of every report file.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
