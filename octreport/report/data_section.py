"""The report's Data section: the data audit's counts, findings and side-by-side pairs."""

from __future__ import annotations

from pathlib import Path

from octreport.data.data_audit import EXAMPLES, DataAudit
from octreport.data.image_facts import load_thumbnails
from octreport.data.shortcuts import SHORTCUT_MARGIN
from octreport.drawing.data_figures import side_by_side
from octreport.drawing.export import encode_array
from octreport.report.assets import FigureStore
from octreport.report.data_views import DataCountRow, DataSection, ShortcutRow
from octreport.report.views import FigureRef, KeyValue

PAIRS_SHOWN = 6
ROWS_SHOWN = 10


def data_section(audit: DataAudit, root: Path, class_names: tuple[str, ...], store: FigureStore,
                 image_format: str = "jpeg") -> DataSection:
    patients = audit.patients or {}
    rows = tuple(DataCountRow(split, tuple(per_class.values()), sum(per_class.values()),
                              patients.get(split) if audit.patients is not None else None)
                 for split, per_class in audit.counts.items())
    sizes = ", ".join(f"{size} ({n})" for size, n in audit.image_sizes[:5]) + (
        f" and {len(audit.image_sizes) - 5} other sizes" if len(audit.image_sizes) > 5 else "")
    facts = (
        KeyValue("Patients from", audit.patient_source + (
            f"; {audit.images_without_patient} image(s) without a known patient" if audit.images_without_patient else "")),
        KeyValue("Image sizes (width x height)", sizes or "not measured"),
        *((KeyValue("Devices (DICOM Manufacturer and model)", ", ".join(f"{d} ({n})" for d, n in audit.devices)),)
          if audit.devices else ()),
        KeyValue("Patients in more than one split", str(audit.leaked_patients) if audit.patients is not None else "unknown"),
        KeyValue("Identical files (SHA-256)", f"{len(audit.exact_across_splits)} group(s) across splits, "
                 f"{len(audit.exact_within_splits)} within one split, {len(audit.label_conflicts)} label conflict(s)"),
        KeyValue("Near-duplicates", f"{audit.near_counts.pairs:,} pair(s) of different patients "
                 f"({audit.near_counts.across_splits:,} across splits) in {audit.near_cluster_count:,} cluster(s): "
                 f"perceptual hash (pHash, 64 bits) at most "
                 f"{audit.hamming_threshold} bits apart"),
    )
    shared = tuple(KeyValue(f"patient {p.patient}", ", ".join(f"{n} in {s}" for s, n in p.images) + " — e.g. "
                            + ", ".join(p.examples)) for p in audit.shared_patients[:ROWS_SHOWN])
    duplicates = tuple(KeyValue(_group_kind(g), "; ".join(f"{path} ({split}, {name})" for path, split, name in g.files[:EXAMPLES]))
                       for g in audit.duplicate_groups[:ROWS_SHOWN])
    clusters = tuple(KeyValue(f"{c.size:,} images, {c.pairs:,} pair(s)",
                              f"{c.across_splits:,} pair(s) across splits; "
                              + ", ".join(f"{n:,} in {split}" for split, n in c.splits) + " — e.g. "
                              + ", ".join(i.path for i in c.images[:EXAMPLES]))
                     for c in audit.near_clusters[:ROWS_SHOWN])
    more = []
    if len(audit.shared_patients) > ROWS_SHOWN or len(audit.duplicate_groups) > ROWS_SHOWN:
        more.append(f"The tables show the first {ROWS_SHOWN}; metrics.json (data_audit) lists them all.")
    if audit.near_cluster_count > len(clusters):
        more.append(f"The {len(clusters)} biggest of {audit.near_cluster_count:,} near-duplicate clusters are shown; "
                    f"metrics.json lists the {len(audit.near_clusters)} biggest, with every count.")
    shown_pairs = _pairs_to_show(audit)
    return DataSection(
        findings=audit.findings(),
        class_names=class_names,
        count_rows=rows,
        facts=facts,
        shared_patients=shared,
        duplicates=duplicates,
        near_clusters=clusters,
        pairs=tuple(_pair_figure(pair, root, store, image_format, n) for n, pair in enumerate(shown_pairs)),
        same_patient_note=(
            f"{audit.near_counts.same_patient:,} pair(s) of images of the same patient are as alike as near-duplicates "
            "(neighbouring B-scans of one eye often are); they are not counted as duplicates."
            if audit.near_counts.same_patient else ""),
        shortcuts=tuple(ShortcutRow(s.feature, s.accuracy, s.chance, s.flagged) for s in audit.shortcuts),
        shortcut_note=(
            "Each property alone, fitted on the training split (each value, or each tenth of its range, predicts its "
            "most frequent class) and scored on the test split, beside chance (always the most frequent training "
            f"class). Flagged at {SHORTCUT_MARGIN:.0%} or more above chance: the class can be read from the property, "
            "so a model may have learned it instead of the retina."),
        skipped=audit.skipped,
        more_note=" ".join(more),
    )


def _group_kind(group) -> str:
    if group.label_conflict:
        return "label conflict"
    return "copy across splits" if group.across_splits else "copy within a split"


_Shown = tuple[tuple[str, str, str], tuple[str, str, str], str]  # (path, split, class) twice, and what the pair is


def _pairs_to_show(audit: DataAudit) -> tuple[_Shown, ...]:
    """Label conflicts first (the same bytes under two classes), then one near-duplicate pair per
    listed cluster."""
    conflicts = [(g.files[0], next(f for f in g.files if f[2] != g.files[0][2]), "identical files under two classes")
                 for g in audit.label_conflicts]
    near = [((p.first.path, p.first.split, p.first.class_name), (p.second.path, p.second.split, p.second.class_name),
             f"{p.distance} of 64 hash bits differ") for p in audit.near_examples()]
    return tuple((conflicts + near)[:PAIRS_SHOWN])


def _pair_figure(pair: _Shown, root: Path, store: FigureStore, image_format: str, n: int) -> FigureRef:
    (first_path, first_split, first_class), (second_path, second_split, second_class), what = pair
    first, second = load_thumbnails([root / first_path, root / second_path])
    caption = (f"Left: {first_path} ({first_split}, {first_class}); right: {second_path} "
               f"({second_split}, {second_class}); {what}.")
    return store.add(encode_array(side_by_side(first, second), image_format), f"data-pair-{n + 1}",
                     f"Data audit pair {n + 1}", caption)
