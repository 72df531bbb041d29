"""Floor 4, evaluation: numbers about predictions: metrics, referral, intervals, calibration, operating points, heat-map checks, the errors gallery.

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
