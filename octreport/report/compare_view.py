"""Showing a run comparison: text for the terminal, and one HTML page (``templates/compare.html``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from octreport._version import __version__
from octreport.audit.compare import FRACTION, MetricDelta, RunComparison, regressions, signed_change_text
from octreport.formatting import num, pct, signed
from octreport.provenance import timestamp_now
from octreport.report.layout import PageHead
from octreport.report.render import render_page

COMPARE_TEMPLATE = "compare.html"


def _value_text(value: float | None, kind: str) -> str:

    return pct(value) if kind == FRACTION else num(value)


def _metric_lines(rows: Sequence[MetricDelta], indent: str = "  ") -> list[str]:
    width = max((len(m.name) for m in rows), default=0)
    return [
        f"{indent}{m.name:<{width}}  {_value_text(m.a, m.kind):>8}  {_value_text(m.b, m.kind):>8}  {signed_change_text(m):>9}"
        + (f"  {m.test.verdict}" if m.test is not None else "")
        for m in rows
    ]


def format_comparison_text(c: RunComparison) -> str:
    """The comparison as plain text for the terminal."""
    lines = [f"A: {c.a.name}  ({c.a.started_at or 'start unknown'})", f"B: {c.b.name}  ({c.b.started_at or 'start unknown'})", ""]
    if c.pairing is not None:
        lines += [c.pairing.note, ""]
    lines += ["Metrics (A, B, B - A, significance):"] + _metric_lines(c.metrics + c.referral)
    lines += ["", "Per class:"]
    for change in c.per_class:
        lines += [f"  {change.name} (support {change.support_a} -> {change.support_b})"] + _metric_lines(change.metrics, "    ")
    for label, names in (("only in A", c.classes_only_in_a), ("only in B", c.classes_only_in_b)):
        if names:
            lines.append(f"  classes {label}: {', '.join(names)}")
    lines += ["", f"Confusion matrix change ({c.confusion.note}):"]
    if c.confusion.delta is not None:
        width = max(len(n) for n in c.confusion.class_names)
        lines.append(" " * (width + 2) + "".join(f"{n:>10}" for n in c.confusion.class_names))
        for name, row in zip(c.confusion.class_names, c.confusion.delta):
            lines.append(f"  {name:<{width}}" + "".join(f"{signed(v, 0):>10}" for v in row))
    lines += ["", "Layers (filter L2 norm min / median / max, B - A):"]
    for drift in c.layers:
        dead = f"; dead-filter share {signed_change_text(drift.dead_share)}" if drift.dead_share else ""
        lines.append(f"  {drift.layer}: {' / '.join(signed(n.delta) for n in drift.norms)}{dead}")
    for label, names in (("only in A", c.layers_only_in_a), ("only in B", c.layers_only_in_b)):
        if names:
            lines.append(f"  layers {label}: {', '.join(names)}")
    lines += _drift_lines(c)
    lines += ["", "Identity:"] + [f"  {i.what}: {i.verdict}" for i in c.identity]
    lines += ["", "Configuration changes:"] + ([f"  {x.key}: {x.a_text} -> {x.b_text}" for x in c.config_changes] or ["  none"])
    lines += ["", "Version changes:"] + ([f"  {x.key}: {x.a_text} -> {x.b_text}" for x in c.version_changes] or ["  none"])
    if c.notes:
        lines += ["", "Notes:"] + [f"  {note}" for note in c.notes]
    return "\n".join(lines) + "\n"


def _drift_lines(c: RunComparison) -> list[str]:
    drift = c.heatmap_drift
    if drift is None:
        return []
    lines = ["", "Heat maps (Grad-CAM of the images both runs showed, same class):", f"  {drift.note}"]
    width = max((len(p.image) for p in drift.pairs), default=0)
    lines += [f"  {p.image:<{width}}  {p.class_name}: rank correlation {num(p.spearman)}, SSIM {num(p.ssim)}"
              for p in drift.pairs]
    lines += [f"  FLAG: {flag}" for flag in drift.flags]
    return lines


@dataclass(frozen=True)
class ComparisonPage:
    """The one object ``compare.html`` receives (as ``page``)."""

    title: str
    generated_at: str
    octreport_version: str
    comparison: RunComparison
    tolerance: float | None
    regressions: tuple[str, ...]
    mode: str = "any"

    @property
    def mode_text(self) -> str:
        return "significant drops only" if self.mode == "significant" else "any drop"

    @property
    def head(self) -> PageHead:
        return PageHead(self.title, self.generated_at, self.octreport_version)


def comparison_page(c: RunComparison, tolerance: float | None = None, mode: str = "any") -> ComparisonPage:
    found = tuple(regressions(c, tolerance, mode)) if tolerance is not None else ()
    return ComparisonPage(
        title=f"octreport comparison: {c.a.name} vs {c.b.name}",
        generated_at=timestamp_now(),
        octreport_version=__version__, comparison=c, tolerance=tolerance, regressions=found, mode=mode,
    )


def render_comparison_html(
    c: RunComparison, tolerance: float | None = None, template_dir: Path | None = None, mode: str = "any"
) -> str:
    """The comparison as one self-contained HTML page (``templates/compare.html``)."""
    return render_page(COMPARE_TEMPLATE, template_dir, page=comparison_page(c, tolerance, mode))
