"""The audit: reads and judges run folders (manifest, gates, compare, significance, history, verify, model card, checklist); renders nothing.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
