"""The evaluation: numbers about predictions: metrics, referral, intervals, calibration, operating points, heat-map checks, the errors gallery.

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
