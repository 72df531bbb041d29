"""Files embedded in the PDF, its document metadata, and the PDF/A-3 variant, read back with pypdf."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pypdf
import pytest
from PIL import Image

from octreport._version import __version__
from octreport.errors import ConfigError, ReportError
from octreport.report.pdf import PDF_VARIANTS, render_pdf

HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Run 42</title>
<meta name="description" content="A model audit"></head><body><h1>Run 42</h1><p>accuracy 96.6%</p></body></html>"""


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_interpolation(reader: pypdf.PdfReader) -> list:
    return [xobject.get_object().get("/Interpolate") for page in reader.pages
            for xobject in page["/Resources"].get("/XObject", {}).values()]


@pytest.fixture
def files(tmp_path):
    metrics = tmp_path / "metrics.json"
    manifest = tmp_path / "manifest.json"
    metrics.write_text(json.dumps({"accuracy": 0.966, "classes": ["CNV", "DME"]}, indent=2), encoding="utf-8")
    manifest.write_text(json.dumps({"outcome": "passed", "note": "caf\u00e9 \u2013 \u00fc"}), encoding="utf-8")
    return [metrics, manifest]


def test_attachments_read_back_equal_to_the_files(tmp_path, files):
    info = render_pdf(HTML, tmp_path / "report.pdf", tmp_path, attachments=files)
    attached = pypdf.PdfReader(info.path).attachments
    assert sorted(attached) == ["manifest.json", "metrics.json"]
    for path in files:
        assert attached[path.name] == [path.read_bytes()]


def test_document_metadata(tmp_path):
    info = render_pdf(HTML, tmp_path / "report.pdf", tmp_path)
    meta = pypdf.PdfReader(info.path).metadata
    assert (meta.title, meta.subject) == ("Run 42", "A model audit")
    assert meta.creator == f"octreport {__version__}"  # a default when the HTML head names no generator
    assert meta.creation_date is not None and meta.modification_date == meta.creation_date
    assert meta.producer.startswith("WeasyPrint")


def test_metadata_from_the_html_head_wins_over_the_defaults(tmp_path):
    html = HTML.replace("</head>", '<meta name="generator" content="lab pipeline 3">'
                                   '<meta name="dcterms.created" content="2020-05-06T07:08:09+00:00"></head>')
    meta = pypdf.PdfReader(render_pdf(html, tmp_path / "r.pdf", tmp_path).path).metadata
    assert meta.creator == "lab pipeline 3"
    assert meta.creation_date.year == 2020 and meta.modification_date.year == 2020


@pytest.mark.parametrize("variant", PDF_VARIANTS)
def test_pdf_a3_keeps_attachments_and_declares_itself(tmp_path, files, variant):
    html = HTML.replace("</body>", f'<img src="{png_data_uri()}" width="64" height="64"></body>')
    plain = pypdf.PdfReader(render_pdf(html, tmp_path / "plain.pdf", tmp_path).path)
    assert image_interpolation(plain) == [True]  # WeasyPrint's default, which PDF/A forbids
    info = render_pdf(html, tmp_path / "report.pdf", tmp_path, attachments=files, pdf_variant=variant)
    reader = pypdf.PdfReader(info.path)
    assert {name: data[0] for name, data in reader.attachments.items()} == {p.name: p.read_bytes() for p in files}
    catalog = reader.trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part="?3', xmp)
    assert re.search(rf'pdfaid:conformance="?{variant[-1].upper()}', xmp)
    assert "/OutputIntents" in catalog and len(catalog["/AF"]) == 2  # associated files, as PDF/A-3 requires
    for spec in catalog["/AF"]:
        assert spec.get_object()["/AFRelationship"] == "/Data"
    assert image_interpolation(reader) == [False]
    assert reader.trailer["/ID"]  # a file identifier, as PDF/A requires
    assert "Run 42" in reader.pages[0].extract_text()


def test_unknown_variant_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="pdf/a-3b"):
        render_pdf(HTML, tmp_path / "r.pdf", tmp_path, pdf_variant="pdf/a-1b")
    assert list(tmp_path.iterdir()) == []


def test_missing_or_clashing_attachments_leave_no_pdf(tmp_path, files):
    with pytest.raises(ReportError, match="no such file"):
        render_pdf(HTML, tmp_path / "r.pdf", tmp_path, attachments=[tmp_path / "nope.json"])
    (tmp_path / "sub").mkdir()
    twin = tmp_path / "sub" / "metrics.json"
    twin.write_text("{}", encoding="utf-8")
    with pytest.raises(ReportError, match="same name to the PDF: metrics.json"):
        render_pdf(HTML, tmp_path / "r.pdf", tmp_path, attachments=[files[0], twin])
    assert not (tmp_path / "r.pdf").exists()
