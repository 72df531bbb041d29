"""The files embedded in a report PDF (metrics.json, manifest.json), read back for ``octreport verify``,
and a copy of the PDF with one of them replaced (the masked manifest uploaded to MLflow)."""

from __future__ import annotations

import hashlib
import io
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


def with_attachment_replaced(path: Path, name: str, content: bytes) -> bytes | None:
    """The bytes of the PDF at ``path`` with its embedded file ``name`` holding ``content`` instead
    (its size and MD5 checksum too), or as they are when it embeds no ``name``; the file at ``path``
    is not changed. None when it cannot be done (a pypdf without attachment editing, before 5; a PDF
    pypdf cannot read)."""
    try:
        import pypdf
        from pypdf.errors import PyPdfError
        from pypdf.generic import ByteStringObject, NumberObject
    except ImportError:  # pragma: no cover - a dependency of octreport
        return None
    try:
        reader = pypdf.PdfReader(str(path))
        if name not in reader.attachments:
            return Path(path).read_bytes()
        writer = pypdf.PdfWriter(clone_from=reader)
        found = [file for file in getattr(writer, "attachment_list", ()) if file.name == name]
        if not found:
            return None
        for file in found:
            file.content = content
            file.size = NumberObject(len(content))
            file.checksum = ByteStringObject(hashlib.md5(content, usedforsecurity=False).digest())
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()
    except (PyPdfError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
