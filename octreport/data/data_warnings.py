"""Problems with the data a reader of the report should know about, each one sentence."""

from __future__ import annotations

from collections.abc import Sequence

from octreport.data.dataset import PreparedData
from octreport.data.groups import NOT_LISTED
from octreport.data.validation import SkippedFile

IMBALANCE_RATIO = 1.5  # largest / smallest class in a split above this is flagged


def data_warnings(data: PreparedData, skipped: Sequence[SkippedFile], evaluated_only: bool,
                  not_listed: Sequence[tuple[str, int]] = ()) -> tuple[str, ...]:
    """Damaged, ignored and unfollowed files, class imbalance, images a ``--groups`` file leaves out;
    empty when there are none. ``evaluated_only``: a run that only evaluates a model, whose test
    split alone is looked at for imbalance. ``not_listed``: (grouping, images it does not list)."""
    warnings = []
    if skipped:
        warnings.append(f"{len(skipped)} image file(s) were skipped because they are damaged (listed below).")
    ignored = data.ignored_files
    if ignored:
        warnings.append(f"{len(ignored)} non-image file(s) in class folders were ignored (e.g. {ignored[0].name}).")
    links = data.outside_links
    if links:
        named = ", ".join(str(path) for path in links[:5]) + (", ..." if len(links) > 5 else "")
        warnings.append(f"{len(links)} symbolic link(s) leading outside the data folder were not followed: {named}.")
    counts_by_split = data.counts()
    if evaluated_only:
        counts_by_split = {"test": counts_by_split["test"]}
    for split, per_class in counts_by_split.items():
        counts = [n for n in per_class.values()]
        if min(counts) and max(counts) / min(counts) > IMBALANCE_RATIO:
            largest = max(per_class, key=per_class.get)
            smallest = min(per_class, key=per_class.get)
            warnings.append(
                f"Class imbalance in the {split} split: {largest} has {per_class[largest]} images, "
                f"{smallest} only {per_class[smallest]}."
            )
    for grouping, count in not_listed:
        if count:
            warnings.append(f"{count} evaluated image(s) are not listed in the {grouping}; they are "
                            f"grouped as '{NOT_LISTED}' in the performance by group.")
    return tuple(warnings)
