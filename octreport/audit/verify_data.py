"""Is the data folder still the data a run used? Its fingerprint made again, compared file by file.

The fingerprint is recomputed the way the run made it (:func:`current_fingerprint`: the same
splits from the seed and fractions the manifest records, every image hashed) and compared with the
manifest's ``data`` (:func:`compare_fingerprints`): the images added, removed, changed (other
bytes) and moved (another split or class). Pure Python, no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from octreport.data.fingerprint import DatasetFingerprint, fingerprint_prepared_data
from octreport.config import TrainConfig


@dataclass(frozen=True)
class FingerprintDiff:
    """Paths relative to the data root. ``moved``: ``(path, "split/class before", "split/class now")``."""

    recorded_sha256: str | None
    current_sha256: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    moved: tuple[tuple[str, str, str], ...]
    class_names_before: tuple[str, ...]
    class_names_now: tuple[str, ...]
    file_list_recorded: bool

    @property
    def same(self) -> bool:
        return self.recorded_sha256 == self.current_sha256


def current_fingerprint(data_dir: Path, manifest: Mapping[str, Any]) -> DatasetFingerprint:
    """The fingerprint of ``data_dir`` made as the run made it (seed and split fractions from the
    manifest's training configuration, and the evaluated split of a run that did not train). Raises :class:`~octreport.errors.DataError` for a folder
    octreport cannot read as a data set."""
    from octreport.data.dataset import prepare_data, prepare_unlabelled
    from octreport.data.layout import looks_unlabelled

    train = (manifest.get("config") or {}).get("train") or {}
    if (((manifest.get("config") or {}).get("report") or {}).get("unlabelled") or looks_unlabelled(data_dir)):
        return fingerprint_prepared_data(prepare_unlabelled(data_dir))  # a screening run read it so
    split = ((manifest.get("config") or {}).get("report") or {}).get("split")
    defaults = TrainConfig()
    # A run that only evaluated a model records the images it chose (--split); runs made before
    # --split existed read their folder as a training run does, whatever their model.
    training = manifest.get("training_mode") is not None or split is None
    data = prepare_data(
        data_dir, int(train.get("seed", defaults.seed)), float(train.get("val_fraction", defaults.val_fraction)),
        float(train.get("test_fraction", defaults.test_fraction)),
        training=training, split="auto" if training else str(split),
    )
    return fingerprint_prepared_data(data)


def _records(files: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(f.get("path")): f for f in files if isinstance(f, Mapping)}


def compare_fingerprints(recorded: Mapping[str, Any], current: DatasetFingerprint) -> FingerprintDiff:
    """``recorded``: the manifest's ``data``; ``current``: the fingerprint made now."""
    files = recorded.get("files")
    before = _records(files) if isinstance(files, list) else {}
    now = {r.path: r for r in current.files}
    changed, moved = [], []
    for path in sorted(set(before) & set(now)):
        old, new = before[path], now[path]
        if old.get("sha256") != new.sha256 or old.get("size") != new.size:
            changed.append(path)
        if (old.get("split"), old.get("class")) != (new.split, new.class_name):
            moved.append((path, f"{old.get('split')}/{old.get('class')}", f"{new.split}/{new.class_name}"))
    return FingerprintDiff(
        recorded_sha256=recorded.get("sha256"),
        current_sha256=current.sha256,
        added=tuple(sorted(set(now) - set(before))) if isinstance(files, list) else (),
        removed=tuple(sorted(set(before) - set(now))),
        changed=tuple(changed),
        moved=tuple(moved),
        class_names_before=tuple(recorded.get("class_names") or ()),
        class_names_now=current.class_names,
        file_list_recorded=isinstance(files, list),
    )


def describe_diff(diff: FingerprintDiff, shown: int = 10) -> list[str]:
    """Lines for the terminal: the counts, then up to ``shown`` paths of each kind."""
    if diff.same:
        return [f"fingerprint {diff.current_sha256[:12]} as recorded"]
    lines = [f"fingerprint {diff.current_sha256[:12]}, recorded {str(diff.recorded_sha256)[:12]}"]
    if diff.class_names_before != diff.class_names_now:
        lines.append(f"classes were {', '.join(diff.class_names_before)}; now {', '.join(diff.class_names_now)}")
    if not diff.file_list_recorded:
        lines.append("the manifest holds no per-image list, so the changed files cannot be named")
        return lines
    for label, paths in (("added", diff.added), ("removed", diff.removed), ("changed", diff.changed)):
        if paths:
            more = f" (and {len(paths) - shown} more)" if len(paths) > shown else ""
            lines.append(f"{len(paths)} image(s) {label}: {', '.join(paths[:shown])}{more}")
    if diff.moved:
        more = f" (and {len(diff.moved) - shown} more)" if len(diff.moved) > shown else ""
        lines.append(f"{len(diff.moved)} image(s) in another split or class: "
                     + ", ".join(f"{p} ({a} -> {b})" for p, a, b in diff.moved[:shown]) + more)
    return lines
