"""The files embedded in a report PDF (metrics.json, manifest.json), read back for ``octreport verify``."""

from __future__ import annotations

from pathlib import Path

from octreport.errors import ReportError


def read_attachments(path: Path) -> dict[str, bytes]:
    """The files embedded in the PDF at ``path``, by name (what :func:`octreport.report.pdf.render_pdf` attached).

    Read with pypdf (imported here). A :class:`ReportError` when the file is not a readable PDF.
    """
    try:
        import pypdf
        from pypdf.errors import PyPdfError
    except ImportError as error:  # pragma: no cover - a dependency of octreport
        raise ReportError(f"reading the PDF's attachments needs pypdf (pip install pypdf): {error}") from error
    try:
        reader = pypdf.PdfReader(str(path))
        return {name: contents[0] for name, contents in reader.attachments.items() if contents}
    except (PyPdfError, OSError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"{path} is not a readable PDF: {type(error).__name__}: {error}") from error
