"""A complete sample ReportContext built by hand, for the report rendering tests.

Images are small generated PNGs (NumPy patterns, no matplotlib figures), sized like the real
ones: a B-scan, a probability chart, a confusion matrix, mosaics about 1000 px wide.
Test-only: it does not ship in the package.
"""

from __future__ import annotations

from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

from octreport.drawing.export import EncodedImage, encode_array
from octreport.evaluation.intervals import Interval
from octreport.report.assets import FigureStore
from octreport.report.context import (
    AverageRow,
    CalibrationSection,
    ClassMetricsRow,
    ConvLayerRow,
    OperatingPointSection,
    ReferralRow,
    ReferralSection,
    ReportContext,
    SelectiveRowView,
    SkippedFileRow,
    Summary,
    ThresholdRowView,
)
from octreport.report.image_views import (
    ClassSection,
    FaithfulnessRow,
    FilterSection,
    HeatmapChecksSection,
    LayerGrid,
    SanityImageRow,
    SanityStepRow,
    ShownImage,
)
from octreport.report.views import KeyValue

OCT_CLASSES = ("CNV", "DME", "DRUSEN", "NORMAL")
# The last path is long on purpose: nested models give paths like this, and they must wrap.
LAYERS = (("conv2d", 32), ("block2/conv2d_1", 64), ("backbone_model/stage_3/block_3b/separable_branch/conv2d_17", 64))
SAMPLE_ACCURACY = 0.9662
SAMPLE_ACCURACY_CI = Interval(SAMPLE_ACCURACY, 0.9629, 0.9693, "wilson")  # 11,928 of 12,345
CALIBRATION_READING = ("When the model says 98% (its confidence lies between 90% and 100% for 11,204 of the 12,345 "
                       "test images, the most common range), it is right 99% of the time.")


FAITHFULNESS_READING = ("Removing the top 10% of Grad-CAM pixels drops the predicted class's probability by 0.41 on "
                        "average; a random 10%: by 0.06.")


def ci(value: float | None, half: float = 0.02, method: str = "wilson") -> Interval | None:
    """A made-up interval around ``value`` (None stays None)."""
    return None if value is None else Interval(value, max(0.0, value - half), min(1.0, value + half), method)
KERMANY_CITATION = (
    "Kermany D, Zhang K, Goldbaum M. Labeled Optical Coherence Tomography (OCT) and Chest X-Ray "
    "Images for Classification. Mendeley Data, v2, 2018. doi:10.17632/rscbjbr9sj.2"
)


def scan_image(seed: int, size: int = 224) -> EncodedImage:
    """A grey OCT-like B-scan: bright wavy layers over speckle."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    surface = size * 0.45 + 12 * np.sin(x / (18 + seed % 5))
    layers = 200 * np.exp(-((y - surface) ** 2) / 30) + 120 * np.exp(-((y - surface - 25) ** 2) / 60)
    pixels = np.clip(layers + rng.normal(30, 18, (size, size)), 0, 255).astype(np.uint8)
    return encode_array(pixels)


def bar_chart(values: tuple[float, ...], width: int = 360, height: int = 140) -> EncodedImage:
    """Horizontal bars on white, one per class (stand-in for the probability chart)."""
    image = np.full((height, width, 3), 255, np.uint8)
    band = height // len(values)
    for i, value in enumerate(values):
        top = i * band + band // 4
        image[top : top + band // 2, 40 : 40 + int(value * (width - 60))] = (29, 90, 142)
    image[:, 39] = 60
    return encode_array(image)


def confusion_image(n: int, cell: int = 90) -> EncodedImage:
    """An n x n block matrix, dark on the diagonal."""
    matrix = np.full((n, n), 0.08) + np.eye(n) * 0.8
    rgb = np.stack([255 - 200 * matrix, 255 - 140 * matrix, 255 - 60 * matrix], axis=-1)
    image = np.kron(rgb, np.ones((cell, cell, 1))).astype(np.uint8)
    image[::cell, :] = 255
    image[:, ::cell] = 255
    return encode_array(image)


@lru_cache(maxsize=None)
def mosaic_image(count: int, seed: int, width: int = 1000, tile: int = 60) -> EncodedImage:
    """A grid of ``count`` coloured tiles about ``width`` px wide (stand-in for a mosaic)."""
    rng = np.random.default_rng(seed)
    columns = max(1, (width + 2) // (tile + 2))
    rows = -(-count // columns)
    image = np.full((rows * (tile + 14), columns * (tile + 2), 3), 255, np.uint8)
    y, x = np.mgrid[0:tile, 0:tile]
    for k in range(count):
        r, c = divmod(k, columns)
        fx, fy = rng.uniform(0.05, 0.3, 2)
        pattern = np.round(8 * (0.5 + 0.5 * np.sin(fx * x + fy * y + k))) / 8  # few levels: fast PNG
        colour = np.stack([pattern * 250, pattern * 180 + 40, (1 - pattern) * 200 + 30], axis=-1)
        top, left = r * (tile + 14) + 12, c * (tile + 2)
        image[top : top + tile, left : left + tile] = colour.astype(np.uint8)
    return encode_array(image)


def curves_image(width: int = 840, height: int = 300) -> EncodedImage:
    image = np.full((height, width, 3), 255, np.uint8)
    x = np.arange(60, width - 20)
    for colour, offset in (((29, 90, 142), 0.0), ((180, 35, 24), 0.08)):
        y = (height - 30 - (height - 60) * (1 - np.exp(-(x - 60) / 150) - offset)).astype(int)
        image[np.clip(y, 0, height - 1), x] = colour
    image[:, 58:60] = 60
    image[height - 30 : height - 28, :] = 60
    return encode_array(image)


def build_sample_context(
    store: FigureStore | None = None,
    *,
    class_names: tuple[str, ...] = OCT_CLASSES,
    images_per_class: int = 1,
    with_referral: bool = True,
    with_training: bool = True,
    data_warnings: tuple[str, ...] = ("Class DRUSEN has 8 test images, fewer than 20: its metrics are rough.",),
    with_heatmap_checks: bool = True,
) -> ReportContext:
    """A complete report context for ``class_names``; images go through ``store`` (embedded by default)."""
    store = store or FigureStore()
    n = len(class_names)
    slugs = [f"class-{i}" for i in range(n)]

    class_rows = tuple(
        ClassMetricsRow(name, 0.95 - 0.03 * i, 0.94 - 0.02 * i, 0.98, 0.945 - 0.025 * i,
                        None if i == n - 1 else 0.991, 250 + 1000 * i, 248 + 1001 * i,
                        ci(0.95 - 0.03 * i), ci(0.94 - 0.02 * i), ci(0.98, 0.01), ci(0.945 - 0.025 * i, method="bootstrap"),
                        None if i == n - 1 else ci(0.991, 0.005, "bootstrap"))
        for i, name in enumerate(class_names)
    )
    averages = (
        AverageRow("macro average", 0.905, 0.91, 0.9071, ci(0.905), ci(0.91), ci(0.9071)),
        AverageRow("weighted average", 0.93, SAMPLE_ACCURACY, 0.9401, ci(0.93), SAMPLE_ACCURACY_CI, ci(0.9401)),
    )
    referral = (
        ReferralSection(
            rows=(
                ReferralRow("Urgent-referral sensitivity", 0.962, 0.978, ours_ci=Interval(0.962, 0.94, 0.977, "bootstrap")),
                ReferralRow("Urgent-referral specificity", 0.951, 0.974, ours_ci=ci(0.951, 0.015, "bootstrap")),
                ReferralRow("Weighted error", 0.071, 0.066, lower_is_better=True, ours_ci=ci(0.071, 0.01, "bootstrap")),
                ReferralRow("Four-class accuracy", SAMPLE_ACCURACY, 0.961, ours_ci=SAMPLE_ACCURACY_CI),
            ),
            reference_source="Kermany et al., Cell 172(5), 2018, Figure 3 (limited model: none given)",
            explanation="CNV and DME need urgent referral; DRUSEN routine, NORMAL observation.",
        )
        if with_referral
        else None
    )
    conv_layers = tuple(
        ConvLayerRow(i, path, "Conv2D", "3×3", filters, "1×1", f"(None, {112 // 2**i}, {112 // 2**i}, {filters})",
                     filters * (9 * (3 if i == 0 else LAYERS[i - 1][1]) + 1))
        for i, (path, filters) in enumerate(LAYERS)
    )

    class_sections = []
    for c, name in enumerate(class_names):
        shown = []
        for k in range(images_per_class):
            wrong = (c + k) % 3 == 1  # one image per class: the second class's is wrong
            predicted = class_names[(c + 1) % n] if wrong else name
            file_name = f"{name}-{1000 + c}-{k + 1}.jpeg"
            image_key = f"{name}-{k}"
            probabilities = tuple(
                KeyValue(other, f"{(0.9 if other == predicted else 0.1 / (n - 1)) * 100:.1f}%")
                for other in class_names
            )
            grids = tuple(
                LayerGrid(path, store.add(mosaic_image(filters, seed=j), f"{image_key}-{path}",
                                          alt=f"Feature maps of {path} for {file_name}",
                                          caption=f"{path}: {filters} feature maps, each scaled to its own range"))
                for j, (path, filters) in enumerate(LAYERS)
            )
            shown.append(ShownImage(
                title=f"Test image {k + 1} of class {name}",
                file_name=file_name,
                true_class=name,
                predicted_class=predicted,
                correct=predicted == name,
                probabilities=probabilities,
                image=store.add(scan_image(c * 7 + k), f"{image_key}-scan", alt=f"OCT B-scan {file_name}",
                                caption=f"{file_name}, as the model saw it"),
                probability_chart=store.add(
                    bar_chart(tuple(0.9 if o == predicted else 0.1 / (n - 1) for o in class_names)),
                    f"{image_key}-probabilities", alt=f"Predicted probabilities for {file_name}",
                    caption="Predicted probability per class"),
                layer_grids=grids,
            ))
        class_sections.append(ClassSection(slugs[c], name, tuple(shown)))

    filter_sections = tuple(
        FilterSection(f"filters-{i}", path,
                      store.add(mosaic_image(filters, seed=100 + i, tile=40), f"filters-{path}",
                                alt=f"Filters of {path}", caption=f"{path}: first input channel of each filter"),
                      0.412 + i, 0.9031 + i, 1.7718 + i)
        for i, (path, filters) in enumerate(LAYERS)
    )

    calibration = CalibrationSection(
        figure=store.add(bar_chart((0.1, 0.3, 0.6, 0.97)), "reliability", alt="Reliability diagram",
                         caption="Accuracy per confidence bin against the diagonal."),
        reading=CALIBRATION_READING,
        rows=(KeyValue("Expected calibration error (ECE, 10 bins)", "0.012"), KeyValue("Brier score (0 best, 2 worst)", "0.061")),
        explanation="ECE: the gap between confidence and accuracy.",
        temperature_rows=(KeyValue("Temperature T (fitted on validation)", "1.310"),),
        temperature_note="Temperature scaling fitted on the 1,200 validation images: T = 1.31. Reported only.",
        selective_figure=store.add(curves_image(), "selective", alt="Accuracy against coverage", caption="Selective prediction."),
        selective_rows=(SelectiveRowView(0.0, 12345, SAMPLE_ACCURACY), SelectiveRowView(0.1, 11110, 0.9905)),
        selective_reading="Refer the 10% least confident scans to a human: accuracy 99.1% on the other 11,110.",
    )
    operating = OperatingPointSection(
        figure=store.add(curves_image(), "urgent-roc", alt="Urgent-referral ROC curve", caption="ROC of P(CNV) + P(DME)."),
        explanation="6,000 urgent and 6,345 non-urgent test scans.",
        rows=(ThresholdRowView(0.5, 0.962, 0.951, 0.49), ThresholdRowView(0.31, 0.978, 0.93, 0.51, "reaches 97.8%")),
        used_note="The rule the report uses reaches sensitivity 96.2% and specificity 95.1%.",
    ) if with_referral else None

    heatmap_checks = HeatmapChecksSection(
        note="For every shown image the pixels are removed hottest first in 10 steps of 10%.",
        reading=FAITHFULNESS_READING,
        figure=store.add(curves_image(), "heatmap-faithfulness", alt="Deletion and insertion curves",
                         caption="Solid: deletion; dashed: insertion."),
        rows=(FaithfulnessRow("mean of 4 image(s)", "", "Grad-CAM", 0.1234, 0.8123, 0.41, is_mean=True),
              FaithfulnessRow("mean of 4 image(s)", "", "random map", 0.7012, 0.3456, 0.06, is_mean=True),
              FaithfulnessRow("CNV-1000-1.jpeg", "CNV", "Grad-CAM", 0.1012, 0.8544, 0.52)),
        sanity_note="On a copy of the model the top 3 layers are re-initialised one after another.",
        sanity_reading="Not explained by what the model learned: the maps barely changed (0.93).",
        sanity_flagged=True,
        sanity_steps=(SanityStepRow(1, "probabilities", 0.9512, 0.88), SanityStepRow(2, "conv4", 0.9301, None)),
        sanity_images=(SanityImageRow("CNV-1000-1.jpeg", "CNV", 0.9301, 0.81, True),
                       SanityImageRow("DME-1001-1.jpeg", "DME", 0.2101, 0.31, False)),
    ) if with_heatmap_checks else None

    return ReportContext(
        title="octreport: OCT classifier audit",
        subtitle="small_cnn on the Kermany 2018 OCT test split",
        generated_at="2024-05-01T12:00:00+00:00",
        octreport_version="0.1.0",
        model_description=(KeyValue("Architecture", "small_cnn"), KeyValue("Parameters", "1,234,567"),
                           KeyValue("Input", "224 × 224 × 1")),
        data_description=(KeyValue("Folder", "/data/OCT2017"), KeyValue("Test images", "1,000"),
                          KeyValue("Classes", ", ".join(class_names))),
        summary=Summary(
            accuracy=SAMPLE_ACCURACY,
            chance_level=1 / n,
            n_test_images=12345,
            urgent_sensitivity=0.962 if with_referral else None,
            urgent_specificity=0.951 if with_referral else None,
            macro_f1=0.9071,
            key_warning="DRUSEN has only 8 test images." if data_warnings else None,
            headline=f"The model is right on {SAMPLE_ACCURACY:.1%} (95% CI 96.3–96.9) of 12,345 test images.",
            accuracy_ci=SAMPLE_ACCURACY_CI,
            urgent_sensitivity_ci=Interval(0.962, 0.94, 0.977, "bootstrap") if with_referral else None,
            macro_f1_ci=Interval(0.9071, 0.8953, 0.9188, "bootstrap"),
            calibration_reading=CALIBRATION_READING,
            heatmap_reading=FAITHFULNESS_READING if with_heatmap_checks else None,
            heatmap_flag="Not explained by what the model learned: the maps barely changed (0.93)."
            if with_heatmap_checks else None,
        ),
        class_rows=class_rows,
        average_rows=averages,
        referral=referral,
        confusion_figure=store.add(confusion_image(n), "confusion", alt="Confusion matrix",
                                   caption="Rows: true class; columns: predicted class."),
        training_figure=store.add(curves_image(), "training", alt="Training curves",
                                  caption="Loss and accuracy per epoch.") if with_training else None,
        conv_layers=conv_layers,
        feature_map_note="For each image, every channel of each conv layer's output, each map scaled "
                         "to its own minimum and maximum (viridis).",
        class_sections=tuple(class_sections),
        filter_note="First input channel of every filter, all filters of a layer on one shared scale.",
        filter_sections=filter_sections,
        data_warnings=data_warnings,
        skipped_files=(SkippedFileRow("train/CNV/CNV-broken-file-with-a-very-long-name-0001.jpeg",
                                      "cannot be read as an image"),) if data_warnings else (),
        reproduce_command="octreport run --data /data/OCT2017 --model runs/small_cnn.keras --seed 7 "
                          "--out runs/report-2024-05-01 --images-per-class 1 --figures embedded",
        reproduce=(KeyValue("Seed", "7"), KeyValue("Image size", "224"), KeyValue("Batch size", "32")),
        versions=(KeyValue("Python", "3.11.9"), KeyValue("TensorFlow", "2.17.0"), KeyValue("Keras", "3.5.0")),
        citation=KERMANY_CITATION,
        interval_note="Every number carries its 95% confidence interval (CI).",
        calibration=calibration,
        operating_point=operating,
        heatmap_checks=heatmap_checks,
    )


def write_sample(out_dir: Path, mode: str = "embedded", **kwargs) -> tuple[ReportContext, FigureStore]:
    """Build the sample context with a store writing to ``out_dir`` (for assets mode)."""
    store = FigureStore(mode, out_dir)
    return build_sample_context(store, **kwargs), store


class _Outline(HTMLParser):
    """The contents links of a report page, and the text of the first heading of each element with an id."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.headings: dict[str, str] = {}
        self._stack: list[tuple[str, str | None]] = []  # open elements: (tag, id)
        self._link: tuple[str, list[str]] | None = None  # the contents link being read
        self._heading: tuple[list[str], list[str]] | None = None  # the ids it titles, and its text
        self._toc_depth: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        attributes = dict(attrs)
        self._stack.append((tag, attributes.get("id")))
        if tag == "nav" and "toc" in (attributes.get("class") or "").split():
            self._toc_depth = len(self._stack)
        elif tag == "a" and self._toc_depth is not None and (attributes.get("href") or "").startswith("#"):
            self._link = (attributes["href"][1:], [])
        elif tag in self.HEADINGS and self._heading is None:
            waiting = [i for _, i in self._stack if i is not None and i not in self.headings]
            self._heading = (waiting, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            self.links.append((self._link[0], _words(self._link[1])))
            self._link = None
        elif tag in self.HEADINGS and self._heading is not None:
            for i in self._heading[0]:
                self.headings[i] = _words(self._heading[1])
            self._heading = None
        if tag == "nav" and self._toc_depth == len(self._stack):
            self._toc_depth = None
        while self._stack and self._stack.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for reading in (self._link, self._heading):
            if reading is not None:
                reading[1].append(data)


def _words(parts: list[str]) -> str:
    return " ".join("".join(parts).split())


def contents_and_headings(html: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """``(links, headings)`` of a rendered report: each contents entry as ``(anchor, text)`` in order,
    and for every element with an id its first heading's text (the element's own when it is a heading)."""
    outline = _Outline()
    outline.feed(html)
    outline.close()
    return outline.links, outline.headings


# ---------- headings at the foot of a PDF page ----------


class _HeadingTexts(HTMLParser):
    """The text of every h1-h4 of a page, and of every table caption (a caption introduces its table)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[tuple[str, str]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "h3", "h4", "caption"):
            self._open = []

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4", "caption") and self._open is not None:
            self.texts.append((tag, " ".join("".join(self._open).split())))
            self._open = None

    def handle_data(self, data):
        if self._open is not None:
            self._open.append(data)


def heading_texts(html: str) -> tuple[set[str], set[str]]:
    """``(headings, captions)``: the texts of a page's h1-h4 and of its table captions."""
    parser = _HeadingTexts()
    parser.feed(html)
    parser.close()
    return ({text for tag, text in parser.texts if text and tag != "caption"},
            {text for tag, text in parser.texts if text and tag == "caption"})


A4_HEIGHT_PT = 841.89
MARGIN_TOP_PT, MARGIN_BOTTOM_PT = 20 / 25.4 * 72, 18 / 25.4 * 72  # templates/report.css @page margins
HEADING_MIN_PT = 9.8  # h4 is 10 pt, body text 9.5 pt, tables 8.5 pt (templates/report.css)


def last_body_lines(pdf_path: Path) -> list[tuple[str, float]]:
    """For each page of a report PDF, its lowest line of text inside the page margins (the running
    header and the page number are outside them), as pypdf reads it, with the largest font size on
    that line in points; ``("", 0)`` for a page without text."""
    import pypdf

    lines = []
    for page in pypdf.PdfReader(pdf_path).pages:
        fragments: list[tuple[float, float, str, float]] = []

        def visit(text, cm, tm, font, size, fragments=fragments):
            if not text.strip():
                return
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            scale = abs(tm[3] * cm[3] + tm[2] * cm[1])  # vertical scale of the text: points per font unit
            if MARGIN_BOTTOM_PT - 2 < y < A4_HEIGHT_PT - MARGIN_TOP_PT + 2:
                fragments.append((y, x, text, size * scale))

        page.extract_text(visitor_text=visit)
        if not fragments:
            lines.append(("", 0.0))
            continue
        lowest = min(f[0] for f in fragments)
        on_line = sorted((f for f in fragments if abs(f[0] - lowest) < 3), key=lambda f: f[1])
        lines.append((" ".join("".join(f[2] for f in on_line).split()), max(f[3] for f in on_line)))
    return lines


def pages_ending_with_a_heading(pdf_path: Path, html: str) -> list[tuple[int, str]]:
    """``(page number, text)`` for each page whose last line of text is a heading or a table's
    caption (or the last line of a wrapped one): something that introduces content left at the foot
    of a page, the content on the next. A heading is told from a table cell with the same words
    (a layer path) by its size."""
    headings, captions = heading_texts(html)

    def ends(line: str, texts: set[str]) -> bool:
        return any(line == text or (len(line) >= 12 and text.endswith(line)) for text in texts)

    found = []
    for number, (line, size) in enumerate(last_body_lines(pdf_path), 1):
        if line and ((size >= HEADING_MIN_PT and ends(line, headings)) or ends(line, captions)):
            found.append((number, line))
    return found
