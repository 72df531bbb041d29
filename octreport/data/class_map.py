"""Which of a model's classes each class folder of evaluation data holds.

A clinic's evaluation data often has some of the model's classes (graded only for DME and
NORMAL), under its own names ("wet AMD", "healthy"). This module matches the folders to the
model's classes, through an optional map (``--class-map``), and relabels the images so that
label ``k`` means the model's output ``k``: every later stage (metrics, referral, calibration,
the report) then sees the model's classes, some of them absent from the data.

Rules:

* folder names and class names are compared as :func:`~octreport.data.layout.folder_key` does
  (case and surrounding spaces ignored);
* a folder named in the map goes to the class the map names; any other folder must be one of the
  model's classes;
* refused (before any run folder exists): a map that is not ``FOLDER=CLASS`` pairs, a folder named
  twice in it, a map onto a class the model does not have (:class:`ConfigError`, exit 2); a folder
  that is neither a model class nor mapped, two folders that end on one class (:class:`DataError`,
  exit 3).

Pure Python: knows names and labels, nothing of models or pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

from octreport.data.dataset import PreparedData
from octreport.data.layout import ImageItem, folder_key
from octreport.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MAP_EXAMPLE = 'write FOLDER=CLASS pairs separated by commas or one a line in a file, e.g. "wet AMD=CNV,healthy=NORMAL"'


@dataclass(frozen=True)
class ClassMatch:
    """How the data's class folders were matched to the model's classes.

    ``folder_of``: the model's class name -> the folder name that holds it (only present classes);
    ``absent``: the model's classes no folder holds, in the model's order."""

    model_classes: tuple[str, ...]
    folder_of: Mapping[str, str]
    absent: tuple[str, ...]

    @property
    def present(self) -> tuple[str, ...]:
        return tuple(name for name in self.model_classes if name in self.folder_of)

    def to_dict(self) -> dict:
        """metrics.json's ``data.class_match``: the model's classes, which folder gave each, and the absent ones."""
        return {"model_classes": list(self.model_classes), "folders": dict(self.folder_of), "absent": list(self.absent)}


def parse_class_map(text: str | Path) -> dict[str, str]:
    """``"wet AMD=CNV,healthy=NORMAL"``, or the path of a file of such pairs (one a line or
    comma-separated, ``#`` comments), as ``{folder: class}`` in the order given."""
    source = str(text)
    path = Path(source).expanduser()
    if "=" not in source and path.is_file():
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"--class-map '{path}' cannot be read: {error}.") from error
        source = "\n".join(line.split("#", 1)[0] for line in source.splitlines())
    elif "=" not in source:
        raise ConfigError(f"--class-map '{text}' is neither a file nor FOLDER=CLASS pairs; {MAP_EXAMPLE}.")
    pairs: dict[str, str] = {}
    seen: dict[str, str] = {}
    for entry in (part.strip() for line in source.splitlines() for part in line.split(",")):
        if not entry:
            continue
        folder, sep, name = (s.strip() for s in entry.partition("="))
        if not sep or not folder or not name:
            raise ConfigError(f"--class-map entry '{entry}' is not FOLDER=CLASS; {MAP_EXAMPLE}.")
        if folder_key(folder) in seen:
            raise ConfigError(f"--class-map names folder '{folder}' twice (as '{seen[folder_key(folder)]}' too); "
                              "map each folder once.")
        seen[folder_key(folder)] = folder
        pairs[folder] = name
    if not pairs:
        raise ConfigError(f"--class-map gives no FOLDER=CLASS pair; {MAP_EXAMPLE}.")
    return pairs


def parse_class_names(text: str) -> tuple[str, ...]:
    """``--class-names A,B,C,D``: the model's classes in output order, each once."""
    names = tuple(name.strip() for name in str(text).split(",") if name.strip())
    keys = [folder_key(name) for name in names]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--class-names names a class twice: {', '.join(names)}.")
    if len(names) < 2:
        raise ConfigError(f"--class-names needs the model's classes in output order, at least two; got '{text}'.")
    return names


def match_classes(folders: Sequence[str], model_classes: Sequence[str], class_map: Mapping[str, str]) -> ClassMatch:
    """Each folder matched to one of ``model_classes`` (directly or through ``class_map``).

    Raises:
        ConfigError: the map names a class the model does not have.
        DataError: a folder is neither a model class nor mapped, or two folders end on one class.
    """
    model_classes = tuple(model_classes)
    by_key = {folder_key(name): name for name in model_classes}
    mapped = {}
    for folder, name in class_map.items():
        if folder_key(name) not in by_key:
            raise ConfigError(f"--class-map maps '{folder}' onto '{name}', which is not a class of the model; "
                              f"its classes are: {', '.join(model_classes)}.")
        mapped[folder_key(folder)] = by_key[folder_key(name)]
    folder_of: dict[str, str] = {}
    unmatched = []
    for folder in folders:
        target = mapped.get(folder_key(folder)) or by_key.get(folder_key(folder))
        if target is None:
            unmatched.append(folder)
        elif target in folder_of:
            raise DataError(f"Folders '{folder_of[target]}' and '{folder}' would both be class {target}; "
                            "merge them on disk, or map only one of them (--class-map).")
        else:
            folder_of[target] = folder
    if unmatched:
        raise DataError(
            f"Class folder(s) {', '.join(repr(f) for f in unmatched)} match none of the model's classes "
            f"({', '.join(model_classes)}). Rename them, or map them with --class-map "
            f"\"{unmatched[0]}=<one of the model's classes>\" (case and spaces are ignored)."
        )
    ordered = {name: folder_of[name] for name in model_classes if name in folder_of}
    absent = tuple(name for name in model_classes if name not in folder_of)
    return ClassMatch(model_classes, MappingProxyType(ordered), absent)


def relabel_to_model(data: PreparedData, match: ClassMatch) -> PreparedData:
    """``data`` with the model's class names and each image's label the model's output index of
    its class; the files, splits and skipped files as they were."""
    index = {folder_key(folder): match.model_classes.index(name) for name, folder in match.folder_of.items()}
    new_label = [index[folder_key(folder)] for folder in data.class_names]

    def relabel(items: tuple[ImageItem, ...]) -> tuple[ImageItem, ...]:
        return tuple(replace(item, label=new_label[item.label]) for item in items)

    folders = tuple(match.folder_of.get(name) for name in match.model_classes)
    return replace(data, class_names=match.model_classes, train=relabel(data.train), val=relabel(data.val),
                   test=relabel(data.test), class_folders=folders)


def align_to_model(data: PreparedData, model_classes: Sequence[str], class_map: Mapping[str, str]) -> PreparedData:
    """``data`` relabelled to ``model_classes`` (see :func:`match_classes`); unchanged (the
    folders' spelling kept) when its folders are the model's classes in the model's order."""
    match = match_classes(data.class_names, model_classes, class_map)
    if not match.absent and tuple(match.folder_of.values()) == data.class_names:
        return data
    for name in match.absent:
        log.info("class %s of the model has no folder in %s: not in this data", name, data.root)
    return relabel_to_model(data, match)
