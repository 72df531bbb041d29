"""The report: the run document turned into one template context; HTML (Jinja2, sandboxed) and PDF (WeasyPrint).

Its place among the floors: tests/test_floors.py (the list), docs/architecture.md (why)."""
