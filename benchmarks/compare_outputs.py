"""Behaviour unchanged? Compare the outputs of two runs of the same command (before and after a change).

    python benchmarks/compare_outputs.py BEFORE_RUN_FOLDER AFTER_RUN_FOLDER

What must be equal:

* ``metrics.json``: every value, except timestamps, timings and paths (the output folders and
  run names differ by construction; the package's own paths may differ between checkouts);
* the report's sections: the ``<section id>`` and heading of each, in order, in report.html;
* the report's text: report.html's words, without images, styles, times, run names and folder
  prefixes of paths (the output folders differ, and a data folder may be given as a relative path);
* ``manifest.json``: the same entries (keys, recursively) with the same values, except times,
  paths, the host and the hashes of the files that carry times (report.html, metrics.json, and
  a model trained in the run: its .keras zip and sidecar; its weights' hash is compared);
* ``predictions.csv``: byte for byte.

Prints one line per check and every difference found; exits 1 when anything differs.
"""

from __future__ import annotations

import difflib
import json
import re
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

TIME_KEYS = {"started_at", "finished_at", "duration_seconds", "timings_seconds", "generated_at", "created",
             "seconds"}  # training.config.seconds: how long training took
PATH_KEYS = {"out_root", "command_line", "file", "root", "path", "source", "templates_dir"}
# Files that hold times: the report and metrics.json (timings), the .keras zip (file dates; the
# manifest's weights_sha256, compared, ignores them) and its sidecar (the training time).
VOLATILE_ARTIFACTS = {"report.html", "metrics.json", "model.keras", "model.octreport.json"}
RUN_NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def _normalise(value: Any, key: str = "") -> Any:
    if key in TIME_KEYS:
        return "<time>"
    if key in PATH_KEYS and isinstance(value, str):
        return "<path>"
    if isinstance(value, dict):
        return {k: _normalise(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v, key) for v in value]
    if isinstance(value, str):
        return RUN_NAME.sub("<run>", value)
    return value


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Every place where two JSON values differ, as ``path: a != b``."""
    if isinstance(a, dict) and isinstance(b, dict):
        found = [f"{where}.{k}: only before" for k in a.keys() - b.keys()]
        found += [f"{where}.{k}: only after" for k in b.keys() - a.keys()]
        for k in a.keys() & b.keys():
            found += differences(a[k], b[k], f"{where}.{k}")
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items before, {len(b)} after"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {str(a)[:80]!r} != {str(b)[:80]!r}"]


class _Sections(HTMLParser):
    """``(id, heading text)`` of each ``<section id>`` in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[list[str]] = []
        self._heading = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and attributes.get("id"):
            self.sections.append([attributes["id"], ""])
        elif tag in ("h2", "h3") and self.sections and not self.sections[-1][1]:
            self._heading = True

    def handle_endtag(self, tag):
        if tag in ("h2", "h3"):
            self._heading = False

    def handle_data(self, data):
        if self._heading:
            self.sections[-1][1] += data


def report_sections(html_path: Path) -> list[tuple[str, str]]:
    parser = _Sections()
    parser.feed(html_path.read_text(encoding="utf-8"))
    return [(anchor, " ".join(text.split())) for anchor, text in parser.sections]


_DATA_URI = re.compile(r"data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_DIRECTORY = re.compile(r"(?:[\w.-]*/)+")


def report_text(html_path: Path) -> list[str]:
    """The visible words of a report page, one sentence a line, normalised as the docstring says."""
    text = _DATA_URI.sub("<image>", html_path.read_text(encoding="utf-8"))
    text = re.sub(r"<style>.*?</style>", " ", text, flags=re.S)
    text = unescape(re.sub(r"<[^>]+>", " ", text))
    text = _DIRECTORY.sub("<dir>/", _TIME.sub("<time>", RUN_NAME.sub("<run>", text)))
    return " ".join(text.split()).split(". ")


def _manifest_view(manifest: dict) -> dict:
    view = dict(manifest)
    view.pop("host", None)
    view.pop("cache", None)  # which parts came from the weights cache: the same results either way
    view["artifacts"] = {k: (v if k not in VOLATILE_ARTIFACTS else "<hash>") for k, v in manifest.get("artifacts", {}).items()}
    model = manifest.get("model")
    if model and Path(str(model.get("file"))).name in VOLATILE_ARTIFACTS:  # a model trained in the run
        view["model"] = {**model, "file_sha256": "<hash>"}
    return _normalise(view)


def compare_run_folders(before: Path, after: Path) -> dict[str, list[str]]:
    """The differences of each check (an empty list: equal)."""
    read = lambda folder, name: json.loads((folder / name).read_text(encoding="utf-8"))  # noqa: E731
    found = {
        "metrics.json": differences(_normalise(read(before, "metrics.json")), _normalise(read(after, "metrics.json"))),
        "manifest.json": differences(_manifest_view(read(before, "manifest.json")), _manifest_view(read(after, "manifest.json"))),
    }
    if (before / "report.html").is_file() or (after / "report.html").is_file():
        a, b = report_sections(before / "report.html"), report_sections(after / "report.html")
        found["report sections"] = [] if a == b else [f"before {a}", f"after  {b}"]
        text_a, text_b = report_text(before / "report.html"), report_text(after / "report.html")
        found["report text"] = [line for line in difflib.unified_diff(text_a, text_b, lineterm="", n=0)
                                if not line.startswith(("---", "+++", "@@"))]
    if (before / "predictions.csv").is_file() or (after / "predictions.csv").is_file():
        same = (before / "predictions.csv").read_bytes() == (after / "predictions.csv").read_bytes()
        found["predictions.csv"] = [] if same else ["the files differ"]
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    before, after = (Path(a).resolve() for a in argv)
    found = compare_run_folders(before, after)
    for check, diffs in found.items():
        print(f"{check}: {'equal' if not diffs else f'{len(diffs)} difference(s)'}")
        for line in diffs[:40]:
            print(f"  {line}")
    if "report sections" in found and not found["report sections"]:
        sections = report_sections(after / "report.html")
        print(f"  ({len(sections)} sections in the same order: {', '.join(a for a, _ in sections)})")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
