"""Floor 8, audit: reads and judges run folders (manifest, gates, compare, significance, history, verify, model card, checklist); renders nothing.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
