"""The drawing: results in, matplotlib figures and mosaics out; one module (export) turns them into PNG/JPEG bytes.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
