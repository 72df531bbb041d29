"""Which images the report shows: drawn with the seed from each class, or named by the user
(``--image``, a ``--sentinels`` file), checked before any work starts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from octreport.data.layout import ImageItem, folder_key, is_image_file
from octreport.data.validation import image_problem
from octreport.errors import ConfigError
from octreport.guarded import read_text

UNKNOWN_LABEL = -1
"""The label of a named image whose folder is not a class."""


def choose_images(items: Sequence[ImageItem], num_classes: int, per_class: int, seed: int) -> tuple[ImageItem, ...]:
    """``per_class`` images of each class, drawn with ``seed`` (same seed, same images)."""
    rng = np.random.default_rng(seed)
    chosen: list[ImageItem] = []
    for label in range(num_classes):
        of_class = sorted((i for i in items if i.label == label), key=lambda i: str(i.path))
        picks = rng.choice(len(of_class), size=min(per_class, len(of_class)), replace=False) if of_class else []
        chosen += [of_class[k] for k in sorted(picks)]
    return tuple(chosen)


def unusable_image(path: Path) -> str | None:
    """Why ``path`` cannot be shown (``"does not exist"``, ...), or None when it can."""
    if not path.is_file():
        return "does not exist"
    if not is_image_file(path):
        return "is not a JPEG or PNG file"
    problem = image_problem(path)
    return f"cannot be used: {problem}" if problem else None


def items_from_paths(paths: Sequence[str | Path], class_names: Sequence[str]) -> tuple[ImageItem, ...]:
    """Images named by the user (``--image``; a ``--sentinels`` file's are checked by
    :func:`sentinel_paths`); the true class is read from the parent folder's name if it is one."""
    keys = [folder_key(name) for name in class_names]
    items = []
    for raw in paths:
        path = Path(raw).expanduser()
        problem = unusable_image(path)
        if problem:
            raise ConfigError(f"--image '{path}' {problem}.")
        parent = folder_key(path.parent.name)
        items.append(ImageItem(path, keys.index(parent) if parent in keys else UNKNOWN_LABEL))
    return tuple(items)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a name too long for the file system
        return False


def sentinel_paths(file: str | Path, data_root: str | Path) -> tuple[str, ...]:
    """The image paths a ``--sentinels`` file lists: one a line, blank lines and ``#`` comments
    ignored; a relative path is looked up in the data folder first, then beside the file.

    Raises:
        ConfigError: the file cannot be read, lists nothing, or names an image that is not there
        or cannot be shown; each message names ``--sentinels`` and the line.
    """
    file, root = Path(file), Path(data_root)
    lines = read_text(file, f"--sentinels '{file}'").splitlines()
    paths = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        given = Path(text).expanduser()
        candidates = [given] if given.is_absolute() else [root / given, file.parent / given]
        found = next((c for c in candidates if _is_file(c)), None)
        if found is None:
            raise ConfigError(f"--sentinels '{file}' line {number}: no image '{text}' "
                              f"(looked in {' and '.join(str(c.parent) for c in candidates)}).")
        problem = unusable_image(found)
        if problem:
            raise ConfigError(f"--sentinels '{file}' line {number}: '{text}' {problem}.")
        paths.append(str(found))
    if not paths:
        raise ConfigError(f"--sentinels '{file}' lists no image path (one a line; # starts a comment).")
    return tuple(dict.fromkeys(paths))
