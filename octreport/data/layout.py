"""Find the images of a data folder and their classes, in either supported layout.

Layouts:
    1. Kermany: ``ROOT/train/CLASS/*``, ``ROOT/test/CLASS/*`` and optionally ``ROOT/val/CLASS/*``;
    2. class folders only: ``ROOT/CLASS/*`` (octreport then makes the splits itself).

Folder names are matched without regard to case or surrounding spaces (the published data set has
``Drusen``, ``Normal`` and a folder name with a trailing space). Files that are not images by
extension (``.DS_Store``, notes, thumbnails) are ignored and listed; files that claim to be images
but are damaged are checked by :mod:`octreport.data.validation`. A symbolic link (a split or class
folder, or an image) that leads outside the data folder is skipped with a warning and listed,
unless ``follow_symlinks`` is set: an audit should say which files it read, and a link out of the
data folder is more often a mistake than a plan. Pure Python: no TensorFlow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from octreport.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".dcm"})  # .dcm: read by data/dicom.py
SPLIT_NAMES = ("train", "val", "test")
KERMANY_LAYOUT = "kermany"
CLASS_FOLDER_LAYOUT = "class-folders"
UNLABELLED_LAYOUT = "unlabelled"
UNLABELLED = "unlabelled"
"""The one class name of unlabelled scans on the data floor (fingerprint, data audit): the scans
have no class; a screening run never reads this name as a label."""

EXPECTED_LAYOUT = (
    "Expected either ROOT/train/<CLASS>/*.jpeg and ROOT/test/<CLASS>/*.jpeg (optionally ROOT/val/<CLASS>/), "
    "or ROOT/<CLASS>/*.jpeg with one folder per class (JPEG or PNG images)."
)


@dataclass(frozen=True)
class ImageItem:
    """One image file and the index of its class in the data set's sorted class names.

    ``frame``: one frame of a multi-frame DICOM volume (``--dicom-frames all``), 0-based; None for
    the file as a whole (a JPEG, a PNG, a single-frame DICOM, or a volume's central frame). Such an
    item is named ``PATH#FRAME`` (:func:`item_name`) wherever a run keys or shows its images."""

    path: Path
    label: int
    frame: int | None = None


@dataclass(frozen=True)
class ScannedDataset:
    """What a data folder holds, before any image is decoded.

    ``splits`` maps the split names found on disk (``train``, ``val``, ``test``; or ``all`` for the
    class-folder layout) to their images, sorted by path so the order is stable.
    """

    root: Path
    layout: str
    class_names: tuple[str, ...]
    splits: dict[str, tuple[ImageItem, ...]]
    ignored_files: tuple[Path, ...] = field(default=())
    outside_links: tuple[Path, ...] = field(default=())


FRAME_MARK = "#"


def item_name(item: "ImageItem", root: Path) -> str:
    """The name of an image in a run's keys and outputs (image facts, predictions.csv, the Data
    shift section): its :func:`relative_name`, with ``#FRAME`` for one frame of a DICOM volume."""
    return with_frame(relative_name(item.path, root), item.frame)


def with_frame(name: str, frame: int | None) -> str:
    """``name`` with ``#FRAME`` when ``frame`` is one (see :func:`item_name`)."""
    return name if frame is None else f"{name}{FRAME_MARK}{frame}"


def shown_name(item: "ImageItem") -> str:
    """The file name a report shows for an image, with ``#FRAME`` for one frame of a DICOM volume."""
    return with_frame(item.path.name, item.frame)


def item_of_name(path: Path, label: int = 0) -> "ImageItem":
    """The image a recorded name stands for: ``FILE.dcm#FRAME`` is that frame of the file (unless a
    file has that very name), any other path the file itself."""
    stem, mark, frame = path.name.rpartition(FRAME_MARK)
    if mark and frame.isdigit() and Path(stem).suffix.lower() == ".dcm" and not path.is_file():
        return ImageItem(path.with_name(stem), label, int(frame))
    return ImageItem(path, label)


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form (as the manifest and predictions.csv name
    images); the absolute path when it lies outside ``root``."""
    path, root = Path(path), Path(root)
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        pass  # resolved only now: resolving costs a system call per part of the path
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def folder_key(name: str) -> str:
    """How folder names are compared: case-insensitive, surrounding spaces ignored."""
    return name.strip().casefold()


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


class _LinkPolicy:
    """Which entries of a data folder are read: everything inside it, and symbolic links that lead
    outside it only when they are to be followed; the others are collected in ``outside``."""

    def __init__(self, root: Path, follow: bool) -> None:
        self.root = root.resolve()
        self.follow = follow
        self.outside: list[Path] = []

    def allows(self, path: Path) -> bool:
        if self.follow or not path.is_symlink() or path.resolve().is_relative_to(self.root):
            return True
        log.warning("skipping %s: a symbolic link that leads outside the data folder (to %s); "
                    "pass --follow-symlinks to read it", path, path.resolve())
        self.outside.append(path)
        return False


def _subfolders(folder: Path, links: _LinkPolicy) -> dict[str, Path]:
    """Visible subfolders by their comparison key; two folders with the same key are refused."""
    found: dict[str, Path] = {}
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or not links.allows(child):
            continue
        key = folder_key(child.name)
        if key in found:
            raise DataError(
                f"Folders '{found[key]}' and '{child}' differ only in case or spaces; "
                "octreport cannot tell which class they are. Merge or rename one of them."
            )
        found[key] = child
    return found


def _list_class_folder(folder: Path, ignored: list[Path], links: _LinkPolicy, may_be_empty: bool = False) -> list[Path]:
    """The images of one class folder; an empty one is refused unless ``may_be_empty`` (data that
    is only evaluated: a clinic keeps folders of the classes it has not graded)."""
    images, outside_before = [], len(links.outside)
    for path in sorted(folder.iterdir()):
        if is_image_file(path) and not links.allows(path):
            continue
        if is_image_file(path):
            images.append(path)
        elif path.is_file():
            ignored.append(path)
    if not images and may_be_empty:
        log.warning("class folder %s holds no images; its class is not in this data", folder)
    elif not images:
        linked = len(links.outside) - outside_before
        note = f" (it has {linked} symbolic link(s) out of the data folder; --follow-symlinks reads them)" if linked else ""
        raise DataError(f"Class folder '{folder}' holds no JPEG or PNG images{note}. {EXPECTED_LAYOUT}")
    return images


def scan_dataset(root: Path | str, follow_symlinks: bool = False, splits: tuple[str, ...] | None = None) -> ScannedDataset:
    """List the images and classes of ``root``; raise :class:`DataError` when it is unusable.

    ``splits``: for a Kermany layout, the split folders to read, of those present (at least one
    must be); the others are not read at all. None: every split, and ``train/`` and ``test/`` must
    be there (what training needs). Symbolic links that lead outside ``root`` are skipped and
    listed in ``outside_links``, or read like any other entry when ``follow_symlinks`` is set."""
    root = _checked_root(root)
    links = _LinkPolicy(root, follow_symlinks)
    subfolders = _subfolders(root, links)
    split_folders = {key: path for key, path in subfolders.items() if key in SPLIT_NAMES}
    if split_folders:
        scanned = _scan_kermany(root, split_folders, links, splits)
    elif not subfolders:
        raise DataError(f"Data folder '{root}' has no class folders{_outside_note(links)}. {EXPECTED_LAYOUT}")
    else:
        scanned = _scan_class_folders(root, subfolders, links, evaluating=splits is not None)
    return replace(scanned, outside_links=tuple(links.outside))


def looks_unlabelled(root: Path | str) -> bool:
    """True for a folder of images without class folders: image files directly in it and no
    visible subfolder (a screening run: :func:`scan_unlabelled`)."""
    root = _checked_root(root)
    children = [c for c in root.iterdir() if not c.name.startswith(".")]
    return not any(c.is_dir() for c in children) and any(is_image_file(c) for c in children)


def scan_unlabelled(root: Path | str, follow_symlinks: bool = False) -> ScannedDataset:
    """Every image under ``root`` (its subfolders too, whatever their names), without labels:
    one split ``all`` of the one pseudo-class :data:`UNLABELLED`."""
    root = _checked_root(root)
    links = _LinkPolicy(root, follow_symlinks)
    images, ignored = [], []
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts) or not links.allows(path):
            continue
        if is_image_file(path):
            images.append(ImageItem(path, 0))
        elif path.is_file():
            ignored.append(path)
    if not images:
        raise DataError(f"Data folder '{root}' holds no JPEG or PNG images{_outside_note(links)}. {EXPECTED_LAYOUT}")
    for path in ignored:
        log.info("ignoring non-image file %s", path)
    return ScannedDataset(root, UNLABELLED_LAYOUT, (UNLABELLED,), {"all": tuple(images)}, tuple(ignored), tuple(links.outside))


def split_folders_of(root: Path | str) -> set[str]:
    """Which of ``train``, ``val`` and ``test`` ``root`` has as folders (names compared as
    :func:`folder_key` does); only the names of its folders are read."""
    root = _checked_root(root)
    names = {folder_key(child.name) for child in root.iterdir() if child.is_dir() and not child.name.startswith(".")}
    return names & set(SPLIT_NAMES)


def layout_of(root: Path | str) -> str:
    """``kermany`` when ``root`` has a ``train``, ``val`` or ``test`` folder, else ``class-folders``."""
    return KERMANY_LAYOUT if split_folders_of(root) else CLASS_FOLDER_LAYOUT


def _checked_root(root: Path | str) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"Data folder '{root}' does not exist. {EXPECTED_LAYOUT}")
    if not root.is_dir():
        raise DataError(f"'{root}' is a file, not a data folder. {EXPECTED_LAYOUT}")
    return root


def _outside_note(links: _LinkPolicy) -> str:
    if not links.outside:
        return ""
    return f" (skipped {len(links.outside)} symbolic link(s) that lead outside it; --follow-symlinks reads them)"


def _class_names(class_folders: dict[str, Path]) -> dict[str, str]:
    """Display name per key: the folder name as written, without surrounding spaces."""
    return {key: path.name.strip() for key, path in class_folders.items()}


def _scan_class_folders(root: Path, class_folders: dict[str, Path], links: _LinkPolicy, evaluating: bool) -> ScannedDataset:
    ignored: list[Path] = []
    keys = sorted(class_folders)
    items = []
    for label, key in enumerate(keys):
        items += [ImageItem(p, label) for p in _list_class_folder(class_folders[key], ignored, links, evaluating)]
    names = _class_names(class_folders)
    return _finish(root, CLASS_FOLDER_LAYOUT, tuple(names[k] for k in keys), {"all": tuple(items)}, ignored, evaluating)


def _scan_kermany(root: Path, split_folders: dict[str, Path], links: _LinkPolicy,
                  wanted: tuple[str, ...] | None) -> ScannedDataset:
    present = ", ".join(f"{name}/" for name in sorted(split_folders))
    required = ("train", "test") if wanted is None else tuple(s for s in wanted if s == "test")
    for name in required:
        if name not in split_folders:
            hint = " To evaluate every image in it, give --split all." if wanted is not None else ""
            raise DataError(f"Data folder '{root}' has {present} but no {name}/ folder.{hint} {EXPECTED_LAYOUT}")
    if wanted is not None:
        split_folders = {name: path for name, path in split_folders.items() if name in wanted}
        if not split_folders:
            raise DataError(f"Data folder '{root}' has {present} but none of {', '.join(wanted)}. {EXPECTED_LAYOUT}")
    per_split = {split: _subfolders(path, links) for split, path in split_folders.items()}
    # Class names come from train/ when it is read, else from test/ (an evaluation-only folder).
    reference = next(name for name in ("train", "test", "val") if name in per_split)
    train_keys = sorted(per_split[reference])
    if not train_keys:
        raise DataError(f"'{split_folders[reference]}' has no class folders. {EXPECTED_LAYOUT}")
    for split, classes in per_split.items():
        missing = sorted(set(train_keys) - set(classes))
        extra = sorted(set(classes) - set(train_keys))
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"lacks class folder(s) {', '.join(missing)}")
            if extra:
                problems.append(f"has class folder(s) {', '.join(extra)} that {reference}/ lacks")
            raise DataError(
                f"'{split_folders[split]}' {' and '.join(problems)}. Every split needs the same class "
                f"folders (compared without regard to case). {EXPECTED_LAYOUT}"
            )
    ignored: list[Path] = []
    splits = {}
    evaluating = wanted is not None
    for split in SPLIT_NAMES:
        if split not in per_split:
            continue
        items = []
        for label, key in enumerate(train_keys):
            items += [ImageItem(p, label) for p in _list_class_folder(per_split[split][key], ignored, links, evaluating)]
        splits[split] = tuple(items)
    names = _class_names(per_split[reference])
    return _finish(root, KERMANY_LAYOUT, tuple(names[k] for k in train_keys), splits, ignored, evaluating)


def _finish(root, layout, class_names, splits, ignored, evaluating: bool = False) -> ScannedDataset:
    """The scanned folder; a classifier is trained on two classes at least, but a model's
    evaluation data may hold one of its classes (matched in :mod:`octreport.data.class_map`)."""
    if not any(splits.values()):
        raise DataError(f"Data folder '{root}' has class folders but no JPEG or PNG images in them. {EXPECTED_LAYOUT}")
    if len(class_names) < 2 and not evaluating:
        raise DataError(
            f"Data folder '{root}' has only one class ({', '.join(class_names)}); a classifier needs "
            f"at least two. {EXPECTED_LAYOUT}"
        )
    for path in ignored:
        log.info("ignoring non-image file %s", path)
    return ScannedDataset(root, layout, class_names, splits, tuple(ignored))
