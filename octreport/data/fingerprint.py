"""A fingerprint of the images a run used: every file's path, size and SHA-256, and one hash of all.

The fingerprint answers "was this model trained and tested on exactly these images, split this
way?". Each used image is one :class:`ImageRecord` (path relative to the data root, split, class,
size, SHA-256); the records are sorted, written in a canonical JSON form, and hashed. The hash
therefore changes when any image's bytes change, when an image is added or removed, moved to
another split or given another class, or when the class names change; it does not depend on the
order the images were listed in, nor on where the data folder lies (paths are relative).

Files are hashed one at a time and streamed (see :func:`~octreport.hashing.sha256_file`),
with a few worker threads (hashlib releases the GIL), and progress is logged every
:data:`PROGRESS_EVERY` files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from octreport.hashing import sha256_file
from octreport.data.files import FileDigest
from octreport.data.layout import SPLIT_NAMES, ImageItem, relative_name
from octreport.data.validation import SkippedFile
from octreport.errors import DataError

if TYPE_CHECKING:
    from octreport.data.dataset import PreparedData

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2000
_MAX_WORKERS = 8


@dataclass(frozen=True)
class ImageRecord:
    """One image the run used. ``path`` is relative to the data root, in POSIX form."""

    path: str
    split: str
    class_name: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "split": self.split, "class": self.class_name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class SkippedRecord:
    """A file left out of the run, and why. ``path`` is relative to the data root where it can be."""

    path: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class DatasetFingerprint:
    """What a run's data were, file by file, and one SHA-256 over all of it.

    ``files`` are sorted by (path, split); ``sha256`` is the hash of :func:`canonical_listing`.
    """

    root: str
    class_names: tuple[str, ...]
    files: tuple[ImageRecord, ...]
    skipped: tuple[SkippedRecord, ...]
    sha256: str

    @property
    def total_bytes(self) -> int:
        return sum(record.size for record in self.files)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class for each split present: ``{split: {class_name: count}}``."""
        splits = sorted({r.split for r in self.files}, key=lambda s: (SPLIT_NAMES + (s,)).index(s))
        result = {split: {name: 0 for name in self.class_names} for split in splits}
        for record in self.files:
            result[record.split][record.class_name] += 1
        return result

    def to_dict(self, include_files: bool = True) -> dict[str, Any]:
        """JSON-ready dict. ``include_files=False`` leaves out the per-file list (about 150 bytes a file).

        Keys: sha256, root, class_names, n_files, total_bytes, counts, skipped, and files when asked.
        """
        document: dict[str, Any] = {
            "sha256": self.sha256,
            "root": self.root,
            "class_names": list(self.class_names),
            "n_files": len(self.files),
            "total_bytes": self.total_bytes,
            "counts": self.counts(),
            "skipped": [s.to_dict() for s in self.skipped],
        }
        if include_files:
            document["files"] = [r.to_dict() for r in self.files]
        return document


def canonical_listing(class_names: Sequence[str], files: Iterable[ImageRecord]) -> bytes:
    """The bytes that are hashed: compact, key-sorted JSON of the class names and the sorted records."""
    rows = sorted([r.path, r.split, r.class_name, r.size, r.sha256] for r in files)
    document = {"class_names": list(class_names), "files": rows}
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def dataset_fingerprint(
    root: Path | str,
    splits: Mapping[str, Sequence[ImageItem]],
    class_names: Sequence[str],
    skipped: Sequence[SkippedFile] = (),
    workers: int | None = None,
    digests: Mapping[Path, FileDigest] | None = None,
) -> DatasetFingerprint:
    """Hash every image of ``splits`` (``{split name: items}``) and the listing of them all.

    ``workers``: threads hashing files at once (default: CPU count, at most 8). ``digests``: sizes
    and hashes already known, by path (those files are not read again).
    """
    known = digests or {}
    root = Path(root)
    names = tuple(str(n) for n in class_names)
    jobs = [(split, item) for split, items in splits.items() for item in items]
    total = len(jobs)
    log.info("fingerprinting %d images under %s", total, root)
    workers = workers or min(_MAX_WORKERS, os.cpu_count() or 1)

    def describe(job: tuple[str, ImageItem]) -> ImageRecord:
        split, item = job
        if item.path in known:
            return ImageRecord(relative_name(item.path, root), split, names[item.label], known[item.path].size,
                               known[item.path].sha256)
        try:
            size, digest = item.path.stat().st_size, sha256_file(item.path)
        except OSError as error:
            raise DataError(
                f"cannot read {item.path} to fingerprint the data ({error.strerror or error}); "
                "was the data folder changed during the run?"
            ) from error
        return ImageRecord(relative_name(item.path, root), split, names[item.label], size, digest)

    records = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done, record in enumerate(pool.map(describe, jobs), start=1):
            records.append(record)
            if done % PROGRESS_EVERY == 0 and done < total:
                log.info("fingerprinted %d of %d images", done, total)
    records.sort(key=lambda r: (r.path, r.split))
    digest = hashlib.sha256(canonical_listing(names, records)).hexdigest()
    skipped_records = tuple(
        sorted((SkippedRecord(relative_name(s.path, root), s.reason) for s in skipped), key=lambda s: s.path)
    )
    log.info("data fingerprint %s (%d images, %.1f MB)", digest[:12], total, sum(r.size for r in records) / 1e6)
    return DatasetFingerprint(str(root), names, tuple(records), skipped_records, digest)


OUTSIDE_LINK_REASON = "symbolic link out of the data folder, not followed (--follow-symlinks reads it)"


def fingerprint_prepared_data(
    data: PreparedData, skipped: Sequence[SkippedFile] | None = None, workers: int | None = None,
    digests: Mapping[Path, FileDigest] | None = None,
) -> DatasetFingerprint:
    """The fingerprint of a :class:`~octreport.data.dataset.PreparedData` (train, val and test).

    ``skipped`` defaults to ``data.skipped``; pass ``RunResults.skipped`` to also list the test
    images that failed to decode during evaluation. Symbolic links out of the data folder that
    were not followed are listed among the skipped files too. ``digests``: the files' sizes and
    hashes already taken from the run's one read of each (:mod:`octreport.data.files`); only the
    files missing from it are read here.
    """
    links = tuple(SkippedFile(path, OUTSIDE_LINK_REASON) for path in data.outside_links)
    return dataset_fingerprint(
        data.root, {"train": data.train, "val": data.val, "test": data.test}, data.class_names,
        (*(data.skipped if skipped is None else skipped), *links), workers, digests,
    )
