"""Floor 7, drawing: results in, matplotlib figures and mosaics out; one module (export) turns them into PNG/JPEG bytes.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
