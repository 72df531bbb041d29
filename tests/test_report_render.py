"""The report context to HTML (Jinja2) and PDF (WeasyPrint): checked by content, never pixel-exact."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from octreport.drawing.export import encode_array
from octreport.errors import ReportError
from octreport.report.assets import FigureStore, sanitize_name
from octreport.runfolder import atomic_path, write_text_atomic
from octreport.report.sections import SECTIONS, TocEntry
from octreport.report.pdf import PdfInfo, render_pdf
from octreport.report.render import delta_pct, int_sep, make_environment, num, pct, render_html, render_page
from octreport.resources import templates_dir
from report_samples import SAMPLE_ACCURACY, build_sample_context, contents_and_headings, pages_ending_with_a_heading

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
PDFTOPPM = shutil.which("pdftoppm")
SECTION_TITLES = ("Summary", "Metrics", "Confusion matrix", "Training curves", "Convolutional layers",
                  "Feature maps", "Filters", "Data warnings", "Appendix: how to reproduce")


@pytest.fixture(scope="module")
def context():
    return build_sample_context()


@pytest.fixture(scope="module")
def html(context) -> str:
    return render_html(context)


@pytest.fixture(scope="module")
def pdf(html, tmp_path_factory) -> PdfInfo:
    out = tmp_path_factory.mktemp("pdf")
    return render_pdf(html, out / "report.pdf", base_url=out)


def user_templates(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


# ---------- filters ----------


def test_number_filters():
    assert pct(0.966) == "96.6%"
    assert pct(1) == "100.0%"
    assert pct(0.12345, 2) == "12.35%"
    assert num(0.91234) == "0.912"
    assert num(2, 1) == "2.0"
    assert int_sep(12345) == "12,345"
    assert int_sep(7) == "7"
    assert delta_pct(0.95, 0.978) == "\u22122.8 pp"
    assert delta_pct(0.071, 0.066) == "+0.5 pp"
    assert delta_pct(0.5, 0.5) == "0.0 pp"
    for missing in (pct(None), num(None), int_sep(None), pct(float("nan")), delta_pct(None, 0.9), delta_pct(0.9, None)):
        assert missing == "\u2013"


def test_number_filters_reject_what_is_not_a_number():
    with pytest.raises(TypeError, match="pct"):
        pct("96.6%")
    with pytest.raises(TypeError, match="whole number"):
        int_sep(1.5)


# ---------- HTML ----------


def test_html_head_and_self_contained(html, context):
    assert html.startswith("<!doctype html>")
    assert '<html lang="en">' in html
    assert '<meta charset="utf-8">' in html
    assert f"<title>{context.title}</title>" in html
    assert '<meta name="generator" content="octreport 0.1.0">' in html
    assert "size: A4" in html  # report.css inlined
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from the network
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "@import" not in html


def test_html_has_every_section_and_toc_anchor(html, context):
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in html
    for entry in context.toc:
        assert f'id="{entry.anchor}"' in html, entry.anchor
        assert f'href="#{entry.anchor}"' in html


def test_each_contents_entry_reads_as_the_heading_it_links_to(html, context):
    links, headings = contents_and_headings(html)
    assert [anchor for anchor, _ in links] == [entry.anchor for entry in context.toc]
    for anchor, text in links:
        assert anchor in headings, f"contents entry {text!r} links to #{anchor}, which has no heading"
        assert text == headings[anchor], anchor


def test_html_numbers_are_formatted(html):
    assert pct(SAMPLE_ACCURACY) == "96.6%"
    assert '<div class="stat-value">96.6%</div>' in html
    assert "12,345 test images" in html
    assert "chance 25.0%" in html
    assert '<td class="num">97.8%</td>' in html  # a Kermany 2018 reference value
    assert "\u22121.6 pp" in html
    assert '<td class="num">0.907<span class="ci"> 0.887–0.927</span></td>' in html  # macro F1 with its interval
    assert '<td class="num">\u2013</td>' in html  # an undefined ROC AUC
    assert "min 0.412, median 0.903, max 1.772" in html


def test_html_shows_every_interval_as_the_issue_asks(html):
    # Summary and referral table: "92.5% (95% CI 88.0-95.4)"; the per-class table gives the bounds
    # under each value, its caption stating the level.
    assert re.search(r'<div class="stat-value">96.6%</div>\s*<div class="stat-ci">\(95% CI 96.3–96.9\)</div>', html)
    assert "96.2%<span class=\"ci\"> (95% CI 94.0–97.7)</span>" in html  # urgent sensitivity, referral table
    assert '<td class="num">95.0%<span class="ci"> 93.0–97.0</span></td>' in html  # CNV precision
    assert "under each value, its 95% confidence interval" in html
    assert "Every number carries its 95% confidence interval" in html
    assert '<td class="num">–</td>' in html  # an undefined value shows no interval


def test_html_has_calibration_and_operating_point_sections(html):
    assert 'id="calibration"' in html and 'id="operating-point"' in html
    assert "In plain words:</strong> When the model says 98%" in html
    assert "Temperature T (fitted on validation)" in html and "Reported only." in html
    assert "Refer the 10% least confident scans to a human: accuracy 99.1%" in html
    assert "<td>reaches 97.8%</td>" in html
    without = render_html(build_sample_context(with_referral=False))
    assert 'id="calibration"' in without and 'id="operating-point"' not in without


def test_real_statistics_sections_render(tmp_path):
    from octreport.evaluation.bootstrap import BootstrapSettings
    from octreport.evaluation.metrics import compute_classification_metrics
    from octreport.evaluation.referral import compute_referral_metrics
    from octreport.evaluation.statistics import compute_prediction_statistics
    from octreport.report.statistics_sections import calibration_section, operating_point_section

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) * 2
    logits[np.arange(300), y] += 3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = ("CNV", "DME", "DRUSEN", "NORMAL")
    statistics = compute_prediction_statistics(
        compute_classification_metrics(y, p, names), compute_referral_metrics(y, p, names), p,
        settings=BootstrapSettings(200), validation=(y[:100], p[:100]),
    )
    store = FigureStore()
    context = replace(build_sample_context(), calibration=calibration_section(statistics, store),
                      operating_point=operating_point_section(statistics, store))
    html = render_html(context)
    assert statistics.calibration.reading in html
    assert f"{statistics.calibration.ece:.3f}" in html and "Test ECE: as is → scaled" in html
    assert html.count('alt="Urgent-referral ROC curve"') == 1 and html.count('alt="Reliability diagram"') == 1
    assert "highest threshold reaching the published sensitivity 97.8%" in html


def test_html_marks_wrong_predictions(html):
    assert html.count("✗ wrong prediction") == 1
    assert html.count("✓ correct") == 3
    assert html.count('class="shown-image wrong"') == 1


def test_user_controlled_text_is_escaped():
    context = build_sample_context(class_names=("<b>x</b>", "NORMAL & co"))
    html = render_html(context)
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<b>x</b>" not in html
    assert "NORMAL &amp; co" in html


def test_heatmap_checks_section_shows_curves_tables_and_the_flag(html):
    section = html.split('<section id="heatmap-checks"', 1)[1].split("</section>", 1)[0]
    assert "<h2>Heat-map checks</h2>" in section
    assert "Deletion and insertion curves" in section and 'alt="Deletion and insertion curves"' in section
    mean_row = section.split("mean of 4 image(s)", 1)[1].split("</tr>", 1)[0]
    assert ["0.123", "0.812", "0.410"] == re.findall(r'<td class="num">([^<]*)</td>', mean_row)
    assert section.count('class="flagged"') == 1  # one image's map barely changed
    assert "callout warning" in section  # the sanity verdict stands out
    summary = html.split('<section id="summary"', 1)[1].split("</section>", 1)[0]
    assert "Heat maps:</strong> Removing the top 10% of Grad-CAM pixels" in summary
    assert "Heat maps flagged:" in summary


def test_optional_sections():
    without = render_html(build_sample_context(with_heatmap_checks=False))
    assert 'id="heatmap-checks"' not in without and "Heat maps:" not in without

    html = render_html(build_sample_context(with_referral=False, with_training=False, data_warnings=()))
    assert 'id="training"' not in html
    assert "apply only to the four OCT classes" in html
    assert "Reference</th>" not in html
    assert "Data warnings: none." in html
    assert "Skipped files: none." in html
    assert "Data-set citation" in html


# ---------- user templates and errors ----------


def test_user_template_folder_overrides_base_and_falls_back(tmp_path, context):
    folder = user_templates(tmp_path / "mine", {
        "base.html": "<style>{{ stylesheet('report.css') }}</style>\n"
                     "{% import 'macros.html' as m %}<p>custom {{ report.summary.accuracy | pct }}</p>"
                     "{% include 'partials/metrics.html' %}",
        "report.css": "body { color: red; }",
    })
    html = render_html(context, folder)
    assert "custom 96.6%" in html
    assert "body { color: red; }" in html  # the user's stylesheet
    assert "<h2>Metrics</h2>" in html  # the default partial, as a fallback


def test_user_partial_takes_its_heading_from_the_context(tmp_path, context):
    context = replace(context, sections={**context.sections, "metrics": TocEntry("metrics", "Scores")})
    folder = user_templates(tmp_path / "mine", {
        "base.html": "{% include 'partials/toc.html' %}{% include 'partials/metrics.html' %}"
                     "{% include 'partials/confusion.html' %}",
        "partials/confusion.html": "{% set this = report.sections['confusion'] %}"
                                   "<section id='{{ this.anchor }}'><h2>{{ this.title }}</h2><p>mine</p></section>",
    })
    links, headings = contents_and_headings(render_html(context, folder))
    assert headings["metrics"] == "Scores"  # the default partial, titled by the context
    assert headings["confusion"] == "Confusion matrix"  # the user's partial, titled by the context
    assert dict(links)["metrics"] == "Scores" and dict(links)["confusion"] == "Confusion matrix"


def test_missing_context_field_names_the_template(tmp_path, context):
    folder = user_templates(tmp_path / "mine", {
        "base.html": "<h1>{{ report.title }}</h1>\n{% include 'partials/summary.html' %}",
        "partials/summary.html": "<p>ok</p>\n<p>{{ report.summary.no_such_field | pct }}</p>",
    })
    with pytest.raises(ReportError, match=r"partials/summary\.html, line 2.*no_such_field"):
        render_html(context, folder)


def test_template_syntax_error_names_the_line(tmp_path, context):
    folder = user_templates(tmp_path / "mine", {"base.html": "<p>\n{% if %}\n</p>"})
    with pytest.raises(ReportError, match=r"base\.html, line 2"):
        render_html(context, folder)


def test_user_base_extending_the_layout_falls_back_to_octreports_layout(tmp_path, context):
    folder = user_templates(tmp_path / "mine", {
        "base.html": '{% extends "layout.html" %}{% set head = report.head %}'
                     "{% block body %}<p>mine {{ report.summary.accuracy | pct }}</p>{% endblock %}",
    })
    html = render_html(context, folder)
    assert html.startswith("<!doctype html>\n<html")
    assert f"<title>{context.title}</title>" in html and "size: A4" in html  # octreport's layout and stylesheet
    assert '<meta name="keywords"' in html and "<p>mine 96.6%</p>" in html


def test_every_page_maps_template_errors_the_same_way(tmp_path, context):
    folder = user_templates(tmp_path / "mine", {
        "base.html": "<p>{{ report.title }}</p>",
        "undefined.html": "<p>\n{{ page.nothing_here }}</p>",
        "overflow.html": "<p>{{ 10 ** 400 * 1.0 }}</p>",
        "recursion.html": "{% macro again() %}{{ again() }}{% endmacro %}{{ again() }}",
        "wrong_type.html": "\n\n{{ 'text' | pct }}",
        "missing.html": "{% include 'partials/nowhere.html' %}",
    })
    cases = {
        "undefined.html": r"undefined\.html, line 2.*nothing_here.*available as 'page'",
        "overflow.html": r"overflow\.html, line 1: OverflowError",
        "recursion.html": r"recursion\.html.*RecursionError",
        "wrong_type.html": r"wrong_type\.html, line 3: TypeError",
        "missing.html": r"'partials/nowhere\.html' was not found",
    }
    for entry, message in cases.items():
        with pytest.raises(ReportError, match=message):
            render_page(entry, folder, page=context)


def test_one_section_list_makes_the_contents_and_the_body(html, context):
    from dataclasses import fields

    from octreport.report.context import ReportContext

    names = {f.name for f in fields(ReportContext)}
    for section in SECTIONS:
        assert (templates_dir() / section.partial).is_file(), section.partial
        assert {section.shown_when, section.subsections} - {None} <= names, section.anchor
    shown = [s.anchor for s in context.body]
    assert shown == [s.anchor for s in SECTIONS if s.anchor in shown]  # page order
    assert [e.anchor for e in context.toc if e.level == 1] == shown
    top_level = {s.anchor for s in SECTIONS}
    assert [a for a in re.findall(r'<section id="([^"]+)"', html) if a in top_level] == shown  # one partial each
    without = replace(context, training_figure=None, heatmap_checks=None)
    assert {"training", "heatmap-checks"} & {s.anchor for s in without.body} == set()
    assert 'id="training"' not in render_html(without)


def test_template_folder_without_base_html(tmp_path, context):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match=r"needs base\.html.*macros\.html"):
        render_html(context, tmp_path / "empty")
    with pytest.raises(ReportError, match="does not exist"):
        make_environment(tmp_path / "nowhere")


def test_environment_is_strict_and_autoescaping():
    env = make_environment()
    assert env.get_template("base.html").environment.autoescape("x.html") is True
    assert env.from_string("{{ '<i>' }}").render() == "&lt;i&gt;"
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ nothing }}").render()
    assert (templates_dir() / "report.css").is_file()


# ---------- figures: embedded and assets ----------


def test_embedded_store_counts_bytes():
    store = FigureStore()
    image = encode_array(np.zeros((4, 6), np.uint8))
    ref = store.add(image, "x", alt="a", caption="c")
    assert ref.src.startswith("data:image/png;base64,")
    assert (ref.width_px, ref.height_px) == (6, 4)
    assert store.bytes_stored == len(image.data) and store.count == 1


def test_asset_names_are_safe_and_unique(tmp_path):
    store = FigureStore("assets", tmp_path)
    image = encode_array(np.zeros((4, 4), np.uint8))
    srcs = [store.add(image, name, alt="a").src for name in ("../../etc/passwd", "CNV", "cnv", "Drüse", "", "/")]
    assert srcs == ["assets/etc-passwd.png", "assets/cnv.png", "assets/cnv-2.png", "assets/druse.png",
                    "assets/figure.png", "assets/figure-2.png"]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(s.split("/")[1] for s in srcs)
    assert sanitize_name("a" * 200) == "a" * 80


def test_assets_mode_html_references_files(tmp_path):
    store = FigureStore("assets", tmp_path)
    html = render_html(build_sample_context(store))
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert srcs and all(src.startswith("assets/") for src in srcs)
    assert "data:image" not in html
    assert all((tmp_path / src).is_file() for src in srcs)
    assert store.count == len(set(srcs))  # the scan appears in two sections, stored once
    assert store.bytes_stored == sum((tmp_path / src).stat().st_size for src in set(srcs))


def test_pdf_resolves_asset_paths_from_base_url(tmp_path):
    store = FigureStore("assets", tmp_path)
    ref = store.add(encode_array(np.full((40, 60, 3), 90, np.uint8)), "grey", alt="grey")
    info = render_pdf(f'<html><body><img src="{ref.src}"></body></html>', tmp_path / "a.pdf", base_url=tmp_path)
    import pypdf

    assert len(pypdf.PdfReader(info.path).pages[0].images) == 1


# ---------- PDF ----------


def test_pdf_opens_with_sections_numbers_and_metadata(pdf, context):
    import pypdf

    reader = pypdf.PdfReader(pdf.path)
    assert 8 <= len(reader.pages) <= 30
    assert pdf.pages == len(reader.pages)
    assert pdf.bytes == pdf.path.stat().st_size > 10_000
    assert reader.metadata.title == context.title
    assert reader.metadata.creator == "octreport 0.1.0"
    text = "\n".join(page.extract_text() for page in reader.pages)
    for title in SECTION_TITLES:
        assert title in text
    assert "96.6%" in text
    assert f"Page 1 of {pdf.pages}" in text
    # The intervals, read back from the PDF text.
    flat = " ".join(text.split())
    assert "96.6% (95% CI 96.3–96.9)" in flat  # the summary's headline
    assert "96.2% (95% CI 94.0–97.7)" in flat  # urgent sensitivity in the referral table
    assert "95.0% 93.0–97.0" in flat            # CNV precision over its bounds in the per-class table
    assert "Calibration and confidence" in text and "Urgent-referral operating point" in text
    assert "Heat-map checks" in text and "Randomisation sanity check" in text
    assert "drops the predicted class's probability by 0.41 on average; a random 10%: by 0.06" in flat


def test_no_pdf_page_ends_with_a_heading_whose_content_is_on_the_next(pdf, html):
    assert pages_ending_with_a_heading(pdf.path, html) == []


def test_pdf_page_with_figure_is_not_blank(pdf, tmp_path):
    if PDFTOPPM is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    import pypdf

    texts = [page.extract_text() for page in pypdf.PdfReader(pdf.path).pages]
    page = next(i for i, t in enumerate(texts, 1) if t.lstrip().startswith("Feature maps"))
    subprocess.run([PDFTOPPM, "-r", "50", "-f", str(page), "-l", str(page), "-png", str(pdf.path),
                    str(tmp_path / "page")], check=True, timeout=60)
    pixels = np.asarray(Image.open(next(tmp_path.glob("page*.png"))).convert("L"), dtype=float)
    # Pages of text and tables measure a std of about 26 and under 7 % dark pixels at 50 dpi.
    assert pixels.std() > 45
    assert (pixels < 200).mean() > 0.15


def test_pdf_metadata_override_and_unknown_key(tmp_path):
    info = render_pdf("<p>x</p>", tmp_path / "m.pdf", tmp_path, metadata={"title": "T", "authors": "Lab"})
    import pypdf

    meta = pypdf.PdfReader(info.path).metadata
    assert (meta.title, meta.author) == ("T", "Lab")
    with pytest.raises(ValueError, match="unknown PDF metadata key"):
        render_pdf("<p>x</p>", tmp_path / "n.pdf", tmp_path, metadata={"colour": "red"})


def test_pdf_failure_leaves_no_file(tmp_path, monkeypatch):
    import weasyprint.document

    def broken_write_pdf(self, target=None, *args, **kwargs):
        Path(target).write_bytes(b"%PDF-1.7 half a file")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(weasyprint.document.Document, "write_pdf", broken_write_pdf)
    target = tmp_path / "report.pdf"
    with pytest.raises(ReportError, match="disk on fire"):
        render_pdf("<p>x</p>", target, tmp_path)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old report")
    with pytest.raises(ReportError):
        render_pdf("<p>x</p>", target, tmp_path)
    assert target.read_bytes() == b"old report"
    assert list(tmp_path.iterdir()) == [target]


def test_pdf_fetches_no_network_url(tmp_path):
    import weasyprint

    from octreport.report.pdf import _sandboxed_url_fetcher

    fetcher = _sandboxed_url_fetcher(weasyprint, [tmp_path])
    fetch = getattr(fetcher, "fetch", fetcher)
    with pytest.raises(ValueError, match="network"):
        fetch("https://example.invalid/font.woff")


def test_atomic_text_write(tmp_path):
    target = tmp_path / "report.html"
    write_text_atomic(target, "<p>é</p>")
    assert target.read_text(encoding="utf-8") == "<p>é</p>"
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyError("interrupted")
    assert target.read_text(encoding="utf-8") == "<p>é</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


# ---------- a browser ----------


def test_html_opens_in_headless_chromium(html, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    page = tmp_path / "report.html"
    write_text_atomic(page, html)
    shot = tmp_path / "shot.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,2000",
               page.as_uri()]
    subprocess.run(command, capture_output=True, timeout=90, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 15
    assert (pixels < 128).mean() > 0.01  # dark text and figures on the page
