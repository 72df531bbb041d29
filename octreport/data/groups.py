"""Acquisition groups a user names (device, site, protocol): a ``file,group`` CSV given with ``--groups``.

Read like a ``--patients`` file (:mod:`octreport.data.patients`): a header row with the columns
``file`` and ``group``; ``file`` is a path relative to the data folder (``test/CNV/a.jpeg``) or a bare
file name that is unique in the data folder. Every name must match an image of the data folder, so
a file written for another folder, or with a typo, is refused before the run starts. Evaluated
images the file does not list fall in the group :data:`NOT_LISTED`.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from octreport.data.layout import IMAGE_SUFFIXES
from octreport.data.patients import read_file_csv
from octreport.errors import DataError

NOT_LISTED = "(not listed)"
"""The group of an evaluated image the groups file does not list."""
_SHOWN = 5


@dataclass(frozen=True)
class GroupTable:
    """``groups``: file key (relative path or bare name) -> group; ``source``: where it came from."""

    groups: Mapping[str, str]
    source: str

    def group(self, relative_path: str) -> str:
        """The group of one image (its path relative to the data root), :data:`NOT_LISTED` when unlisted."""
        return self.groups.get(relative_path) or self.groups.get(Path(relative_path).name) or NOT_LISTED


def read_groups_file(path: Path | str, root: Path | str) -> GroupTable:
    """Read a ``file,group`` CSV and check that each name is an image of the data folder ``root``
    (bare names: exactly one); :class:`DataError` saying what is wrong otherwise."""
    path = Path(path)
    table = read_file_csv(path, "group", "groups file", "Spectralis-site-A")
    _check_names(table, _image_names(Path(root)), path, Path(root))
    return GroupTable(table, f"groups file {path.name}")


def _image_names(root: Path) -> list[str]:
    """Every image file under ``root``, as paths relative to it (POSIX)."""
    found = []
    for folder, _, files in os.walk(root):
        base = Path(folder).relative_to(root)
        found += [(base / name).as_posix() for name in files if Path(name).suffix.lower() in IMAGE_SUFFIXES]
    return found


def _check_names(table: Mapping[str, str], images: Iterable[str], path: Path, root: Path) -> None:
    relative = set(images)
    by_name: dict[str, list[str]] = defaultdict(list)
    for image in sorted(relative):
        by_name[Path(image).name].append(image)
    unknown = [name for name in table if name not in relative and name not in by_name]
    if unknown:
        shown = ", ".join(f"'{name}'" for name in unknown[:_SHOWN]) + (f" and {len(unknown) - _SHOWN} more" if len(unknown) > _SHOWN else "")
        raise DataError(f"The groups file '{path}' names {len(unknown)} file(s) that are not images of the data "
                        f"folder '{root}': {shown}. Give each file relative to the data folder (e.g. 'test/CNV/a.jpeg') "
                        "or by a file name that is unique in it.")
    ambiguous = [name for name in table if name not in relative and len(by_name[name]) > 1]
    if ambiguous:
        name = ambiguous[0]
        raise DataError(f"The groups file '{path}' names '{name}', which is the name of {len(by_name[name])} images "
                        f"of the data folder ({', '.join(by_name[name][:_SHOWN])}). Give it relative to the data folder.")
