"""Floor 9, the run document: what a run computed (RunResults), built once, and what it is published as (metrics.json, manifest.json, gates), judged once.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
