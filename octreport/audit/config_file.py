"""A TOML configuration file for unattended runs, turned into Click's ``default_map``.

.. code-block:: toml

    # applies to every command that has the option
    seed = 1
    quiet = true

    [run]
    data = "/data/OCT2017"
    epochs = 20
    images-per-class = 2       # dashes or underscores, as you like
    format = ["pdf"]           # an option's long name, or its parameter name ("formats")

    [compare]
    fail-on-regression = 0.02

    [card]                     # the model card (see octreport.audit.model_card), not a command
    intended-use = "Triage of OCT B-scans for urgent referral."

    [mlflow]                   # log to MLflow (run, report, audit-data, publish), not a command
    log = true
    experiment = "oct-nightly"

Each table is one command of the group; keys are that command's options, named by a long option
name without the dashes (``images-per-class``) or by the parameter name (``images_per_class``).
A top-level key goes to every command that has such an option and must exist in at least one;
a table's key overrides a top-level one. Unknown tables and keys are refused with a
:class:`~octreport.errors.ConfigError` listing what is valid. Keep command-specific options
(``out`` means a run folder for ``run`` but a model file for ``train``) inside their table.

The ``[card]`` table is the model card of the reports ``run`` and ``report`` write
(:func:`load_config_file_and_card` returns it apart). Given to Click as ``default_map``, the file sits between the environment and the defaults:
command line > ``OCTREPORT_*`` environment variables > this file > the defaults in code.
Values are converted and checked by the options themselves when a command runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from octreport.errors import ConfigError
from octreport.tomlfile import read_toml

if TYPE_CHECKING:
    from octreport.audit.model_card import ModelCard


def normalize_key(key: str) -> str:
    """``"images-per-class"`` and ``"--images_per_class"`` -> ``"images_per_class"``."""
    return str(key).strip().lstrip("-").replace("-", "_")


def option_keys(command: click.Command) -> dict[str, str]:
    """Every accepted key of ``command`` mapped to its parameter name.

    Options only (not arguments, which name the thing a command acts on), and not ``--help``.
    """
    keys: dict[str, str] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or not param.expose_value or param.name is None or param.name == "help":
            continue
        keys[normalize_key(param.name)] = param.name
        for flag in param.opts + param.secondary_opts:
            if flag.startswith("--"):
                keys.setdefault(normalize_key(flag), param.name)
    return keys


def _display_names(command: click.Command, params: set[str]) -> list[str]:
    """How ``--help`` names each of ``params``: its first long option, without the dashes."""
    names = []
    for param in command.params:
        if param.name in params:
            long = [flag for flag in getattr(param, "opts", []) if flag.startswith("--")]
            names.append(long[0][2:] if long else param.name.replace("_", "-"))
    return sorted(names)


def _unknown_key(key: str, where: str, commands: Mapping[str, click.Command], accepted: Mapping[str, Mapping[str, str]]) -> ConfigError:
    names = sorted({n for name, command in commands.items() for n in _display_names(command, set(accepted[name].values()))})
    return ConfigError(
        f"unknown key '{key}' {where}. Valid keys: {', '.join(names) or 'none'} "
        f"(dashes or underscores; the parameter name also works)."
    )


def validate_against(group: click.Group, mapping: Mapping[str, Any], source: str = "the configuration") -> dict[str, dict[str, Any]]:
    """Check ``mapping`` (a parsed TOML document) against ``group``'s commands; return a ``default_map``.

    The result is ``{command name: {parameter name: value}}`` with the top-level keys copied into
    every command that has them. Raises :class:`ConfigError` naming the unknown table or key and
    listing the valid ones.
    """
    commands = {name: option_keys(command) for name, command in group.commands.items()}
    result: dict[str, dict[str, Any]] = {name: {} for name in commands}
    tables = {key: value for key, value in mapping.items() if isinstance(value, Mapping)}
    top_level = {key: value for key, value in mapping.items() if not isinstance(value, Mapping)}

    for key, value in top_level.items():
        targets = [(name, keys[normalize_key(key)]) for name, keys in commands.items() if normalize_key(key) in keys]
        if not targets:
            raise _unknown_key(key, f"at the top of {source}: no command has such an option", group.commands, commands)
        for name, param in targets:
            if param in result[name]:
                raise ConfigError(f"the top of {source} sets option '{param}' twice (under two spellings).")
            result[name][param] = value

    seen: dict[str, set[str]] = {}
    for table, entries in tables.items():
        if table not in commands:
            raise ConfigError(
                f"unknown section [{table}] in {source}. Sections are command names: {', '.join(sorted(commands))}; "
                f"and [card] for the model card, [mlflow] for MLflow logging."
            )
        for key, value in entries.items():
            if isinstance(value, Mapping):
                raise ConfigError(f"[{table}] {key} in {source} is a table; options take plain values or lists.")
            param = commands[table].get(normalize_key(key))
            if param is None:
                raise _unknown_key(key, f"in [{table}] of {source}", {table: group.commands[table]}, commands)
            if param in seen.setdefault(table, set()):
                raise ConfigError(f"[{table}] of {source} sets option '{param}' twice (under two spellings).")
            seen[table].add(param)
            result[table][param] = value
    return {name: values for name, values in result.items() if values}


def load_config_file(path: Path | str, group: click.Group) -> dict[str, dict[str, Any]]:
    """Read the TOML file at ``path`` and return it as ``group``'s ``default_map`` (see :func:`validate_against`)."""
    return validate_against(group, read_toml(path), source=str(path))


def load_config_file_and_card(path: Path | str, group: click.Group) -> tuple[dict[str, dict[str, Any]], ModelCard | None]:
    """Like :func:`load_config_file`, with the ``[card]`` table read apart as a
    :class:`~octreport.audit.model_card.ModelCard` (None when the file has none)."""
    from octreport.audit.model_card import CARD_TABLE, card_from_mapping

    document = read_toml(path)
    table = document.pop(CARD_TABLE, None)
    card = None if table is None else card_from_mapping(table, f"{path} [{CARD_TABLE}]")
    document = with_mlflow_table(document, str(path))
    return validate_against(group, document, source=str(path)), card


MLFLOW_TABLE = "mlflow"
_MLFLOW_KEYS = {"log": "mlflow", "experiment": "mlflow_experiment", "tracking_uri": "mlflow_tracking_uri",
                "register": "mlflow_register"}


def with_mlflow_table(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``[mlflow]`` (``log = true``, ``experiment``, ``tracking-uri``, ``register``) as the
    top-level keys ``mlflow``, ``mlflow-experiment``, ...: they reach every command with those
    options (``run``, ``report``, ``audit-data``, ``publish``), and a command's table still wins."""
    document = dict(document)
    table = document.pop(MLFLOW_TABLE, None)
    if table is None:
        return document
    if not isinstance(table, Mapping):
        raise ConfigError(f"'{MLFLOW_TABLE}' in {source} must be a table: [mlflow] with log, experiment, tracking-uri, register.")
    for key, value in table.items():
        param = _MLFLOW_KEYS.get(normalize_key(key))
        if param is None:
            raise ConfigError(f"unknown key '{key}' in [{MLFLOW_TABLE}] of {source}. Valid keys: "
                              f"{', '.join(k.replace('_', '-') for k in _MLFLOW_KEYS)}.")
        if any(normalize_key(other) == param for other in document):
            raise ConfigError(f"{source} sets '{param}' both at the top and as [{MLFLOW_TABLE}] {key}.")
        document[param] = value
    return document
