"""The rendered HTML laid out as a PDF by WeasyPrint, written atomically.

WeasyPrint is imported inside :func:`render_pdf` (it takes about a second to import). It fetches
only ``data:`` URLs and ``file:`` URLs inside the folders it is given (the run's own folder, and
the template folders), compared by resolved path so that neither ``..`` nor a symbolic link leads
out; everything else, the network above all, is refused with a logged warning. A template folder
shared between people therefore cannot pull a file of the machine into a report. WeasyPrint's own
logger is limited to errors; the stylesheet is written to need none of its warnings.

Files can be embedded in the PDF as attachments (``metrics.json``, ``manifest.json``), so the
PDF alone carries the numbers behind it. ``pdf_variant`` asks WeasyPrint for an archival PDF/A
variant; only the PDF/A-3 variants (:data:`PDF_VARIANTS`) keep arbitrary attachments (PDF/A-1
forbids them and PDF/A-2 allows only PDF/A files), so only those are offered. WeasyPrint writes
the PDF/A metadata, output intent and embedded fonts; it does not validate the result (use
veraPDF for a formal check).
"""

from __future__ import annotations

import logging
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from octreport._version import __version__
from octreport.config import PDF_VARIANTS
from octreport.errors import ConfigError, ReportError
from octreport.provenance import timestamp_now
from octreport.runfolder import atomic_path

log = logging.getLogger(__name__)

# Document metadata a caller may set or override (WeasyPrint reads the same from the HTML head:
# <title>, <meta name="author|description|keywords|generator|dcterms.created|dcterms.modified">).
METADATA_KEYS = ("title", "authors", "description", "keywords", "generator", "created", "modified")
_ALLOWED_PROTOCOLS = ("file", "data")
# PDF/A variants that keep non-PDF attachments (ISO 19005-3); "a" needs a tagged PDF.
ATTACHMENT_RELATIONSHIP = "Data"  # PDF/A-3 AFRelationship: the files hold the data the report shows


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


def refused_url_reason(url: str, folders: Sequence[Path]) -> str | None:
    """Why the report may not fetch ``url`` (None when it may): only ``data:`` URLs and ``file:``
    URLs whose resolved path lies inside one of ``folders`` (also resolved) are allowed."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "data":
        return None
    if scheme != "file":
        return f"a {scheme}: URL (a report fetches nothing from the network)"
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).resolve()
    if any(path.is_relative_to(folder.resolve()) for folder in folders):
        return None
    return f"a file outside the run and template folders ({path})"


def _sandboxed_url_fetcher(weasyprint: object, folders: Sequence[Path]) -> object:
    """WeasyPrint's fetcher, refusing what :func:`refused_url_reason` refuses."""

    def check(url: str) -> None:
        reason = refused_url_reason(url, folders)
        if reason is not None:
            log.warning("the PDF leaves out %s: %s", url[:200], reason)
            raise ValueError(f"octreport refused to fetch {url[:200]}: {reason}")

    fetcher_class = getattr(weasyprint, "URLFetcher", None)
    if fetcher_class is not None:  # WeasyPrint >= 66

        class SandboxedFetcher(fetcher_class):  # type: ignore[misc, valid-type]
            def fetch(self, url: str, headers: object = None) -> object:
                check(url)
                return super().fetch(url, headers)

        return SandboxedFetcher(allowed_protocols=_ALLOWED_PROTOCOLS)
    default = weasyprint.default_url_fetcher  # type: ignore[attr-defined]

    def fetch(url: str, *args: object, **kwargs: object) -> dict:
        check(url)
        return default(url, *args, **kwargs)

    return fetch


def _attachments(weasyprint: object, paths: Sequence[Path]) -> list:
    """WeasyPrint attachments for ``paths``; a :class:`ReportError` for a missing file or a repeated name."""
    names = [Path(p).name for p in paths]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ReportError(f"cannot attach two files with the same name to the PDF: {', '.join(repeated)}")
    result = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ReportError(f"cannot attach {path} to the PDF: no such file")
        result.append(weasyprint.Attachment(  # type: ignore[attr-defined]
            filename=str(path), name=path.name, description=f"{path.name} of this octreport run",
            relationship=ATTACHMENT_RELATIONSHIP,
        ))
    return result


def _check_variant(pdf_variant: str | None) -> None:
    if pdf_variant is not None and pdf_variant not in PDF_VARIANTS:
        raise ConfigError(
            f"PDF variant {pdf_variant!r} is not offered; choose one of {', '.join(PDF_VARIANTS)} "
            f"(PDF/A-3, the archival PDF that keeps attached files), or none for a plain PDF."
        )


# PDF/A forbids image interpolation (ISO 19005-2/3, 6.2.8); WeasyPrint interpolates images whose
# CSS image-rendering is "auto", so an archival PDF gets this user stylesheet.
_PDFA_CSS = "html { image-rendering: crisp-edges !important; }"


def _unique_associated_files(document: object, pdf: object) -> None:
    """WeasyPrint 70 lists each attachment twice in the catalog's /AF (Kozea/WeasyPrint#2917); keep one."""
    catalog = pdf.catalog  # type: ignore[attr-defined]
    if "AF" in catalog:
        catalog["AF"] = type(catalog["AF"])(dict.fromkeys(catalog["AF"]))


def _fill_default_metadata(metadata: object) -> None:
    """What the HTML head did not say: generator "octreport X", creation and modification times."""
    now = timestamp_now()
    if not metadata.generator:  # type: ignore[attr-defined]
        metadata.generator = f"octreport {__version__}"  # type: ignore[attr-defined]
    if not metadata.created:  # type: ignore[attr-defined]
        metadata.created = now  # type: ignore[attr-defined]
    if not metadata.modified:  # type: ignore[attr-defined]
        metadata.modified = metadata.created  # type: ignore[attr-defined]


def render_pdf(
    html: str,
    out_path: Path,
    base_url: Path | None,
    metadata: dict | None = None,
    attachments: Sequence[Path] = (),
    pdf_variant: str | None = None,
    readable_folders: Sequence[Path] = (),
) -> PdfInfo:
    """Lay out ``html`` as a PDF at ``out_path``; relative URLs (``assets/...``) resolve from ``base_url``.

    The PDF may embed files from ``base_url`` and ``readable_folders`` only (and ``data:`` URLs).
    ``base_url=None``: nothing relative is fetched (every image must be a ``data:`` URI) and
    relative links stay relative in the PDF, so a PDF that links to files beside it (the history
    page) keeps working when the folder moves.

    ``metadata`` overrides what the HTML head says (keys: :data:`METADATA_KEYS`; ``authors`` and
    ``keywords`` are lists); the generator defaults to "octreport X" and the creation and
    modification dates to now. ``attachments``: files embedded in the PDF under their own names.
    ``pdf_variant``: one of :data:`PDF_VARIANTS`, or None for a plain PDF. The file appears
    complete or not at all: a failure leaves neither a partial PDF nor a temporary file, and raises
    :class:`~octreport.errors.ReportError`.
    """
    started = time.perf_counter()
    overrides = _checked_metadata(metadata)
    _check_variant(pdf_variant)
    _quiet_weasyprint()
    import weasyprint

    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise ReportError(f"cannot write the PDF {out_path}: the folder {out_path.parent} does not exist")
    base = None if base_url is None else str(Path(base_url).resolve()) + os.sep  # a folder: relative URLs resolve inside it
    files = _attachments(weasyprint, attachments)
    options: dict = {}
    if pdf_variant:
        options = {"pdf_variant": pdf_variant, "stylesheets": [weasyprint.CSS(string=_PDFA_CSS)]}
    try:
        readable = [*([] if base_url is None else [Path(base_url)]), *map(Path, readable_folders)]
        fetcher = _sandboxed_url_fetcher(weasyprint, readable)
        document = weasyprint.HTML(string=html, base_url=base, url_fetcher=fetcher).render(**options)
        for key, value in overrides.items():
            setattr(document.metadata, key, value)
        _fill_default_metadata(document.metadata)
        with atomic_path(out_path) as tmp:
            document.write_pdf(
                tmp, attachments=files or None, pdf_variant=pdf_variant, finisher=_unique_associated_files if pdf_variant else None,
            )
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
