"""The rendered HTML laid out as a PDF by WeasyPrint, written atomically.

WeasyPrint is imported inside :func:`render_pdf` (it takes about a second to import), and only
``file:`` and ``data:`` URLs are fetched: a report never reaches the network. WeasyPrint's own
logger is limited to errors; the stylesheet is written to need none of its warnings.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from octreport.errors import ReportError
from octreport.report.assets import atomic_path

log = logging.getLogger(__name__)

# Document metadata a caller may set or override (WeasyPrint reads the same from the HTML head:
# <title>, <meta name="author|description|keywords|generator|dcterms.created|dcterms.modified">).
METADATA_KEYS = ("title", "authors", "description", "keywords", "generator", "created", "modified")
_ALLOWED_PROTOCOLS = ("file", "data")


@dataclass(frozen=True)
class PdfInfo:
    """What :func:`render_pdf` wrote: where, how many pages and bytes, how long it took."""

    path: Path
    pages: int
    bytes: int
    seconds: float


def _quiet_weasyprint() -> None:
    for name in ("weasyprint", "weasyprint.progress", "fontTools", "fontTools.subset"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _checked_metadata(metadata: dict | None) -> dict:
    checked = {}
    for key, value in (metadata or {}).items():
        if key not in METADATA_KEYS:
            raise ValueError(f"unknown PDF metadata key {key!r}; known: {', '.join(METADATA_KEYS)}")
        checked[key] = [value] if key in ("authors", "keywords") and isinstance(value, str) else value
    return checked


def _local_url_fetcher(weasyprint: object) -> object:
    """A URL fetcher that refuses everything but ``file:`` and ``data:`` URLs."""
    fetcher_class = getattr(weasyprint, "URLFetcher", None)
    if fetcher_class is not None:  # WeasyPrint >= 66
        return fetcher_class(allowed_protocols=_ALLOWED_PROTOCOLS)
    default = weasyprint.default_url_fetcher  # type: ignore[attr-defined]

    def fetch(url: str, *args: object, **kwargs: object) -> dict:
        if url.split(":", 1)[0].lower() not in _ALLOWED_PROTOCOLS:
            raise ValueError(f"octreport reports fetch no network resources: {url}")
        return default(url, *args, **kwargs)

    return fetch


def render_pdf(html: str, out_path: Path, base_url: Path, metadata: dict | None = None) -> PdfInfo:
    """Lay out ``html`` as a PDF at ``out_path``; relative URLs (``assets/...``) resolve from ``base_url``.

    ``metadata`` overrides what the HTML head says (keys: :data:`METADATA_KEYS`; ``authors`` and
    ``keywords`` are lists). The file appears complete or not at all: a failure leaves neither a
    partial PDF nor a temporary file, and raises :class:`~octreport.errors.ReportError`.
    """
    started = time.perf_counter()
    overrides = _checked_metadata(metadata)
    _quiet_weasyprint()
    import weasyprint

    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise ReportError(f"cannot write the PDF {out_path}: the folder {out_path.parent} does not exist")
    base = str(Path(base_url).resolve()) + os.sep  # a folder: relative URLs resolve inside it
    try:
        document = weasyprint.HTML(string=html, base_url=base, url_fetcher=_local_url_fetcher(weasyprint)).render()
        for key, value in overrides.items():
            setattr(document.metadata, key, value)
        with atomic_path(out_path) as tmp:
            document.write_pdf(tmp)
    except Exception as exc:  # WeasyPrint raises many kinds; all mean "no PDF"
        raise ReportError(
            f"WeasyPrint could not write the PDF {out_path}: {type(exc).__name__}: {exc}. "
            f"The HTML report is unaffected; if you use your own templates, check their CSS."
        ) from exc
    info = PdfInfo(
        path=out_path,
        pages=len(document.pages),
        bytes=out_path.stat().st_size,
        seconds=time.perf_counter() - started,
    )
    log.info("PDF: %s, %d pages, %.1f MB, %.1f s", out_path.name, info.pages, info.bytes / 1e6, info.seconds)
    return info
