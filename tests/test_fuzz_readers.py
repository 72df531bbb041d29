"""Every reader of a run folder or a user file, fed mutated copies of real files (from one real
run folder): values of the wrong type, keys removed, deep nesting, cut and corrupted bytes. What
escapes is one of our own errors (a clear message, a documented exit code) or nothing; history
lists an odd run apart. A seeded generator of our own keeps it fast and the same on every run."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from octreport.errors import OctReportError

EXAMPLES = 40
ODD_VALUES: list[Any] = [7, -1, 1e308, "x", "", None, True, [], {}, [1, "a", None], {"a": {"b": [1]}},
                         [[[[[[[[[[]]]]]]]]]]]


def _paths(value: Any, at: tuple = ()) -> list[tuple]:
    found = [at]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*at, key))
    elif isinstance(value, list):
        for index, child in enumerate(value[:3]):
            found += _paths(child, (*at, index))
    return found


def _set(document: Any, at: tuple, value: Any, delete: bool) -> Any:
    if not at:
        return value
    parent = document
    for step in at[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[at[-1]]
    else:
        parent[at[-1]] = value
    return document


def mutated_json(text: str, rng: random.Random) -> bytes:
    """One mutation of the JSON document ``text``: a value replaced or a key removed (mostly), the
    bytes cut or corrupted, or the document nested very deep."""
    kind = rng.random()
    if kind < 0.1:
        depth = rng.choice([100, 5000])
        return ("[" * depth + "]" * depth).encode() if rng.random() < 0.5 else ('{"a":' * depth + "1" + "}" * depth).encode()
    if kind < 0.2:
        raw = bytearray(text.encode())
        cut = rng.randrange(len(raw))
        return bytes(raw[:cut]) if rng.random() < 0.5 else bytes(raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1:])
    document = json.loads(text)
    for _ in range(rng.randint(1, 3)):
        at = rng.choice(_paths(document))
        document = _set(document, at, copy.deepcopy(rng.choice(ODD_VALUES)), delete=rng.random() < 0.3)  # never the shared value itself
    return json.dumps(document).encode()


def mutated_text(text: str, rng: random.Random) -> bytes:
    """A text file (CSV, TOML, a list of paths) with lines dropped, repeated, cut or corrupted."""
    lines = text.splitlines()
    kind = rng.random()
    if kind < 0.25 and lines:
        lines.pop(rng.randrange(len(lines)))
    elif kind < 0.5 and lines:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines) + rng.choice([",", ",x,y", "=", "\x00", '"']))
    elif kind < 0.65:
        lines.append(rng.choice(["a = [" * 3000, "[[a]]", "x = {y = {z = 1}}", "\ufeff", "a,b\n" * 3]))
    raw = bytearray("\n".join(lines).encode())
    if kind >= 0.65 and raw:
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    return bytes(raw)


def ours_or_nothing(call) -> None:
    try:
        call()
    except OctReportError:
        pass


@pytest.fixture(scope="module")
def archive(audited_run, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-archive")
    shutil.copytree(audited_run[0], root / "20260101-000000", ignore=shutil.ignore_patterns("*.pdf", "*.html"))
    return root / "20260101-000000"


@pytest.mark.parametrize("name", ["metrics.json", "manifest.json"])
def test_history_and_compare_take_mutated_run_files(archive, tmp_path, name):
    from octreport.audit.compare import compare_runs, load_run
    from octreport.audit.history import build_history, history_to_dict
    from octreport.evaluation.bootstrap_settings import BootstrapSettings
    from octreport.report.compare_view import format_comparison_text
    from octreport.report.history_view import format_history_text

    rng = random.Random(name)
    original = (archive / name).read_text(encoding="utf-8")
    settings = BootstrapSettings(100, 0.95, 0)
    for example in range(EXAMPLES):
        run = tmp_path / str(example) / archive.name
        shutil.copytree(archive, run, ignore=shutil.ignore_patterns("*.keras", "*.csv"))
        (run / name).write_bytes(mutated_json(original, rng))
        history = build_history(run.parent)
        format_history_text(history), json.dumps(history_to_dict(history))
        assert len(history.entries) + len(history.problems) == 1
        ours_or_nothing(lambda: format_comparison_text(compare_runs(load_run(archive, archive.parent),
                                                                    load_run(run, run.parent), settings)))


@pytest.mark.parametrize("name", ["metrics.json", "manifest.json"])
def test_the_mlflow_record_takes_mutated_run_files(archive, tmp_path, name):
    from octreport.audit.mlflow_record import read_run_folder

    rng = random.Random(f"mlflow {name}")
    original = (archive / name).read_text(encoding="utf-8")
    run = tmp_path / archive.name
    shutil.copytree(archive, run, ignore=shutil.ignore_patterns("*.keras", "*.csv"))
    for _ in range(EXAMPLES):
        (run / name).write_bytes(mutated_json(original, rng))
        ours_or_nothing(lambda: read_run_folder(run))


def test_verify_takes_mutated_manifests(archive, tmp_path):
    from octreport.audit.verify import format_verification, verify_run

    rng = random.Random("verify")
    original = (archive / "manifest.json").read_text(encoding="utf-8")
    for example in range(6):
        run = tmp_path / str(example)
        shutil.copytree(archive, run)
        (run / "manifest.json").write_bytes(mutated_json(original, rng))
        ours_or_nothing(lambda: format_verification(verify_run(run, tmp_path, data_dir=tmp_path / "gone")))


def test_cards_configs_and_lists_take_mutated_files(audited_run, tmp_path):
    from octreport.audit.config_file import load_config_file_and_card
    from octreport.audit.model_card import read_card_file
    from octreport.cli import main
    from octreport.data.groups import read_groups_file
    from octreport.data.image_choice import sentinel_paths
    from octreport.data.patients import read_patients_file
    from octreport.models.metadata import read_metadata, sidecar_path

    data = audited_run[1]
    images = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png")) or \
        sorted(p.relative_to(data).as_posix() for p in data.rglob("*.jpeg"))
    card = {"intended_use": "research", "limitations": ["synthetic data", "one site"], "contact": "lab"}
    files = {
        "card.json": (json.dumps(card), mutated_json, read_card_file),
        "card.toml": ('intended-use = "research"\nlimitations = ["synthetic", "one site"]\n', mutated_text, read_card_file),
        "config.toml": ('[run]\nepochs = 2\nseed = 1\n[card]\ncontact = "lab"\n', mutated_text,
                        lambda path: load_config_file_and_card(path, main)),
        "groups.csv": ("file,group\n" + "".join(f"{n},site-{i % 2}\n" for i, n in enumerate(images)), mutated_text,
                       lambda path: read_groups_file(path, data)),
        "patients.csv": ("file,patient\n" + "".join(f"{n},P{i}\n" for i, n in enumerate(images)), mutated_text,
                         read_patients_file),
        "sentinels.txt": ("# pinned\n" + "\n".join(images[:3]) + "\n", mutated_text, lambda path: sentinel_paths(path, data)),
        sidecar_path(Path("m.keras")).name: (sidecar_path(audited_run[0] / "model.keras").read_text(), mutated_json,
                                              lambda path: read_metadata(path.parent / "m.keras")),
    }
    for name, (text, mutate, read) in files.items():
        rng = random.Random(name)
        read(_written(tmp_path / name, text.encode()))  # the unmutated file is read
        for _ in range(EXAMPLES):
            ours_or_nothing(lambda: read(_written(tmp_path / name, mutate(text, rng))))


def _written(path: Path, raw: bytes) -> Path:
    path.write_bytes(raw)
    return path
