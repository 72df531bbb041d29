"""The the run document: what a run computed (RunResults), built once, and what it is published as (metrics.json, manifest.json, gates), judged once.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
