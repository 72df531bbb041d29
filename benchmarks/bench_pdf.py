"""PDF: WeasyPrint time and PDF size of the default sample report, and what image embedding does.

Run on demand (not a test):

    python benchmarks/bench_pdf.py [--quick] [--run RUN_DIR] [--out DIR] [--json OUT]

The report: the default sample report of a trained model (``RUN_DIR/model.keras`` of a default
``octreport run``, as ``bench_e2e.py`` leaves it; without ``--run`` a 1-epoch run is made first),
written as HTML twice through ``octreport.make_report`` with the same model, data and seed:
``image_format="png"`` and ``"jpeg"`` (how the grids and heat maps are encoded; the default was
png until 2026-11-26 07:04, jpeg since: the report says which). Then, in one process,
interleaved, median of ``--repeats``, each HTML laid out into a PDF by WeasyPrint:

* ``png``            octreport's ``render_pdf`` on the png HTML: the baseline;
* ``jpeg``           ``render_pdf`` on the jpeg HTML;
* ``png, dpi 150``   WeasyPrint's own ``dpi=`` option (images downsampled to at most this
                     resolution on the page), likewise ``dpi 100`` and ``jpeg, dpi 100``;
* ``png, optimize``  WeasyPrint's ``optimize_images=True`` (lossless PNG recompression);
* ``no images``      the png HTML with every image replaced by a 1x1 pixel: what the text
                     and tables alone cost, the floor for any image choice.

Each row: time and size relative to the baseline. Readability: the first feature-map page of the
png, jpeg and dpi-100 PDFs is rendered at 100 and 200 dpi with ``pdftoppm`` into ``--out``, to look at.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import Report, compare  # noqa: E402
from bench_e2e import run_default_job  # noqa: E402

_DATA_URI = re.compile(r'src="data:image/[a-z]+;base64,[A-Za-z0-9+/=]+"')


def one_pixel_png() -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1), 255).save(buffer, format="PNG")
    return 'src="data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode() + '"'


def write_html_reports(model_path: Path, out_root: Path) -> dict[str, dict]:
    """The default sample report as HTML, with PNG and with JPEG grids; its figure timings."""
    import octreport

    made = {}
    for fmt in ("png", "jpeg"):
        outcome = octreport.make_report(model_path, None, out_root / fmt, formats=("html",), image_format=fmt)
        made[fmt] = {"html": outcome.html_path, "timings": outcome.timings}
    return made


def feature_map_page(pdf: Path) -> int:
    """The first page with a feature-map grid (its caption says "channels with the strongest")."""
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    count = int(re.search(r"Pages:\s+(\d+)", pages).group(1))
    for page in range(1, count + 1):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                              capture_output=True, text=True).stdout
        if "Feature maps of conv" in text or "strongest mean activation" in text:
            return page
    return 1


def main(argv: Sequence[str] | None = None) -> Report:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="png and jpeg only, 1 repeat")
    parser.add_argument("--run", type=Path, default=None, help="a run folder with model.keras")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="where PDFs and page images go")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 2)
    out = args.out or Path(tempfile.mkdtemp(prefix="octreport-bench-pdf-"))
    out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run
    if run_dir is None:
        run_dir = Path(run_default_job(out / "run", quick=True, extra=["--format", "html"])["run_dir"])
    made = write_html_reports(run_dir / "model.keras", out / "html")

    import weasyprint

    from octreport.report.pdf import render_pdf

    html = {fmt: made[fmt]["html"].read_text() for fmt in made}
    base = {fmt: made[fmt]["html"].parent for fmt in made}
    html["none"], base["none"] = _DATA_URI.sub(one_pixel_png(), html["png"]), base["png"]

    def octreport_pdf(fmt: str, name: str):
        return lambda: render_pdf(html[fmt], out / f"{name}.pdf", base_url=base[fmt])

    def weasy_pdf(fmt: str, name: str, **options):
        return lambda: weasyprint.HTML(string=html[fmt], base_url=str(base[fmt]) + os.sep).write_pdf(
            out / f"{name}.pdf", **options)

    ways = {"png": octreport_pdf("png", "png"), "jpeg": octreport_pdf("jpeg", "jpeg")}
    if not args.quick:
        ways.update({
            "png, dpi 150": weasy_pdf("png", "png-dpi150", dpi=150),
            "png, dpi 100": weasy_pdf("png", "png-dpi100", dpi=100),
            "jpeg, dpi 100": weasy_pdf("jpeg", "jpeg-dpi100", dpi=100),
            "png, optimize_images": weasy_pdf("png", "png-optimize", optimize_images=True),
            "no images (text and tables only)": weasy_pdf("none", "no-images"),
        })
    weasy_pdf("none", "warm-up")()  # fonts and WeasyPrint's own caches
    t = compare(ways, repeats, warm_up=False)
    files = {"png": "png", "jpeg": "jpeg", "png, dpi 150": "png-dpi150", "png, dpi 100": "png-dpi100",
             "jpeg, dpi 100": "jpeg-dpi100", "png, optimize_images": "png-optimize",
             "no images (text and tables only)": "no-images"}
    sizes = {name: (out / f"{files[name]}.pdf").stat().st_size for name in ways}
    report = Report("pdf")
    from octreport.config import ReportConfig

    report.add("4 pdf", "sample report PDF with png images, size", sizes["png"] / 1e6, "MB",
               note=f"HTML {len(html['png'].encode()) / 1e6:.1f} MB; the default is now {ReportConfig().image_format}")
    for name in list(ways)[1:]:
        report.add("4 pdf", f"{name} / png: WeasyPrint time", t.ratio(name, "png"), "x", note=t.spread(name, "png"),
                   cpu=t.ratio(name, "png", "cpu"))
        report.add("4 pdf", f"{name} / png: PDF size", sizes[name] / sizes["png"], "x",
                   note=f"{sizes[name] / 1e6:.2f} MB")
    figures = {fmt: made[fmt]["timings"].get("figures", float("nan")) for fmt in made}
    report.add("4 pdf", "jpeg / png grids: time to draw and encode all figures (one run each)",
               figures["jpeg"] / figures["png"], "x")

    shown = []
    if shutil.which("pdftoppm"):
        for name in ("png", "jpeg", "png-dpi100", "jpeg-dpi100"):
            pdf = out / f"{name}.pdf"
            if pdf.exists():
                page = feature_map_page(pdf)
                for resolution in (100, 200):
                    prefix = out / f"page-{name}-{resolution}dpi"
                    subprocess.run(["pdftoppm", "-r", str(resolution), "-f", str(page), "-l", str(page), "-png",
                                    "-singlefile", str(pdf), str(prefix)], check=True)
                    shown.append(f"{prefix}.png")
    report.details.update(sizes=sizes, seconds=dict(t), figures_seconds=figures, pages_to_look_at=shown,
                          out=str(out), run=str(run_dir))
    report.print()
    print("pages to look at:", *shown, sep="\n  ")
    report.write(args.json)
    return report


if __name__ == "__main__":
    main()
