"""Floor 10, report: the run document turned into one template context; HTML (Jinja2, sandboxed) and PDF (WeasyPrint).

The floors, bottom up, are listed in tests/test_floors.py and explained in docs/architecture.md."""
