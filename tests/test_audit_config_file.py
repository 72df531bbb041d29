"""The TOML configuration file as Click's default_map, on a tiny click group (not the real CLI).

Precedence: command line > OCTREPORT_* environment variables > configuration file > defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from octreport.audit.config_file import load_config_file, option_keys, validate_against
from octreport.errors import ConfigError


@click.group()
def tiny():
    """A stand-in for the octreport group."""


@tiny.command()
@click.option("--epochs", type=int, default=15)
@click.option("--images-per-class", type=int, default=2)
@click.option("--out", "out_root", default="octreport-runs")
@click.option("--format", "formats", multiple=True, default=("html", "pdf"))
@click.option("--augment/--no-augment", default=True)
@click.option("--quiet", is_flag=True)
@click.option("--seed", type=int, default=0)
@click.argument("extra", required=False)
def run(**options):
    click.echo(json.dumps(options))


@tiny.command()
@click.option("--epochs", type=int, default=15)
@click.option("--out", "model_path", default="model.keras")
@click.option("--seed", type=int, default=0)
def train(**options):
    click.echo(json.dumps(options))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "octreport.toml"
    path.write_text(text, encoding="utf-8")
    return path


def invoke(args, default_map=None, env=None) -> dict:
    result = CliRunner().invoke(tiny, args, default_map=default_map, auto_envvar_prefix="OCTREPORT", env=env or {})
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_precedence_command_line_then_environment_then_file_then_default(tmp_path):
    config = load_config_file(write_config(tmp_path, "[run]\nepochs = 20\n"), tiny)
    assert invoke(["run"])["epochs"] == 15
    assert invoke(["run"], config)["epochs"] == 20
    assert invoke(["run"], config, env={"OCTREPORT_RUN_EPOCHS": "30"})["epochs"] == 30
    assert invoke(["run", "--epochs", "40"], config, env={"OCTREPORT_RUN_EPOCHS": "30"})["epochs"] == 40


def test_keys_with_dashes_or_underscores_option_or_parameter_names(tmp_path):
    config = load_config_file(write_config(tmp_path, """
[run]
images-per-class = 3
out_root = "runs"
format = ["pdf"]
no-augment = false
quiet = true

[train]
out = "m.keras"
"""), tiny)
    assert config == {
        "run": {"images_per_class": 3, "out_root": "runs", "formats": ["pdf"], "augment": False, "quiet": True},
        "train": {"model_path": "m.keras"},
    }
    options = invoke(["run"], config)
    assert (options["images_per_class"], options["out_root"], options["formats"]) == (3, "runs", ["pdf"])
    assert (options["augment"], options["quiet"]) == (False, True)
    assert invoke(["train"], config)["model_path"] == "m.keras"


def test_top_level_keys_go_to_every_command_that_has_them_and_tables_override(tmp_path):
    config = load_config_file(write_config(tmp_path, "seed = 4\nquiet = true\n[train]\nseed = 5\n"), tiny)
    assert config == {"run": {"seed": 4, "quiet": True}, "train": {"seed": 5}}
    assert invoke(["run"], config)["seed"] == 4 and invoke(["train"], config)["seed"] == 5


@pytest.mark.parametrize("text, message", [
    ("[run]\nepoch = 3\n", r"unknown key 'epoch' in \[run\].*Valid keys: augment, epochs, format, images-per-class, out, quiet, seed \("),
    ("[train]\nquiet = true\n", r"unknown key 'quiet' in \[train\].*Valid keys: epochs, out, seed \("),
    ("colour = 'red'\n", r"unknown key 'colour' at the top.*no command has such an option"),
    ("[serve]\nport = 1\n", r"unknown section \[serve\].*Sections are command names: run, train"),
    ("[run]\nextra = 'x'\n", r"unknown key 'extra'"),          # arguments are not configurable
    ("[run]\nhelp = true\n", r"unknown key 'help'"),
    ("[run]\nepochs = 2\nEPOCHS = 3\n", r"unknown key 'EPOCHS'"),  # keys are case-sensitive, like options
    ("[run]\nout = 'a'\nout-root = 'b'\n", r"sets option 'out_root' twice"),
    ("[run.more]\nx = 1\n", r"\[run\] more .* is a table"),
])
def test_refuses_unknown_keys_and_sections(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_config_file(write_config(tmp_path, text), tiny)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.toml", tiny)
    with pytest.raises(ConfigError, match="not valid TOML.*line 1"):
        load_config_file(write_config(tmp_path, "epochs = = 3\n"), tiny)


def test_values_are_checked_by_the_option_when_the_command_runs(tmp_path):
    config = validate_against(tiny, {"run": {"epochs": "many"}})
    result = CliRunner().invoke(tiny, ["run"], default_map=config)
    assert result.exit_code == 2 and "'many' is not a valid integer" in result.output


def test_option_keys():
    keys = option_keys(run)
    assert keys["out"] == keys["out_root"] == "out_root"
    assert keys["no_augment"] == keys["augment"] == "augment"
    assert "extra" not in keys and "help" not in keys
