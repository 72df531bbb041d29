"""The model card: what a model is for, on whom it may be used, how its labels were obtained.

A card is given as a ``[card]`` table of the TOML configuration file or as its own file
(``--card FILE``: TOML with the fields at the top level or in a ``[card]`` table, or JSON)::

    [card]
    intended-use = "Triage of retinal OCT B-scans for urgent referral (CNV, DME)."
    intended-users = ["ophthalmologists", "optometrists in referral clinics"]
    out-of-scope-uses = "Diagnosis without a clinician; other devices than Spectralis."
    reference-standard = "Labels by graders, verified by two ophthalmologists (Kermany et al. 2018)."
    data-provenance = "Kermany et al. 2018, Mendeley Data, doi:10.17632/rscbjbr9sj."
    limitations = "..."
    ethical-considerations = "..."
    contact = "oct-team@example.org"

Each field (:data:`CARD_FIELDS`) is a string or a list of strings; keys take dashes or
underscores. A field left out, or given empty, is *missing*: the report's "Model card" section
names it instead of pretending, and ``--require-card`` turns a missing field into a failed gate.
The fields follow Mitchell et al. 2019 (Model Cards for Model Reporting) and the items of CLAIM
2024 and TRIPOD+AI that only the model's owner can answer (see :mod:`octreport.audit.checklist`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from octreport.errors import ConfigError
from octreport.guarded import read_json
from octreport.tomlfile import read_toml

CARD_TABLE = "card"


@dataclass(frozen=True)
class CardField:
    """One field of the card: its key, the label the report shows, and what it asks for."""

    key: str
    label: str
    asks: str


CARD_FIELDS: tuple[CardField, ...] = (
    CardField("intended_use", "Intended use", "what the model is for, and its role in the care pathway"),
    CardField("intended_users", "Intended users", "who may use its output, and with what expertise"),
    CardField("out_of_scope_uses", "Out-of-scope uses", "what it must not be used for, and on whom"),
    CardField("reference_standard", "Reference standard", "how the labels were obtained, by whom"),
    CardField("data_provenance", "Data provenance", "where the images come from: sites, devices, dates, population"),
    CardField("limitations", "Limitations", "known failure modes, populations or devices not covered"),
    CardField("ethical_considerations", "Ethical considerations", "consent, privacy, fairness across patient groups"),
    CardField("contact", "Contact", "who answers questions about the model"),
)
CARD_KEYS = tuple(f.key for f in CARD_FIELDS)
CARD_LABELS: Mapping[str, str] = MappingProxyType({f.key: f.label for f in CARD_FIELDS})


@dataclass(frozen=True)
class ModelCard:
    """The card's fields, each a tuple of non-empty strings (empty: missing); ``source`` says where
    it came from (``"octreport.toml [card]"``, a file path), None when no card was given."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - set(CARD_KEYS))
        if unknown:
            raise ConfigError(f"unknown model card field(s) {', '.join(unknown)}; the fields are: {', '.join(CARD_KEYS)}.")
        values = {key: tuple(self.values.get(key, ())) for key in CARD_KEYS}
        object.__setattr__(self, "values", MappingProxyType(values))

    def get(self, key: str) -> tuple[str, ...]:
        return self.values[key]

    @property
    def missing(self) -> tuple[str, ...]:
        """The keys of the fields not given, in :data:`CARD_FIELDS` order."""
        return tuple(key for key in CARD_KEYS if not self.values[key])

    @property
    def given(self) -> bool:
        """True when at least one field is filled in."""
        return len(self.missing) < len(CARD_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """``metrics.json``'s ``card``: every field (a string, a list of strings, or null when
        missing), ``missing`` (their keys) and ``source``."""
        document: dict[str, Any] = {}
        for key in CARD_KEYS:
            entries = self.values[key]
            document[key] = None if not entries else (entries[0] if len(entries) == 1 else list(entries))
        document["missing"] = list(self.missing)
        document["source"] = self.source
        return document


def _normalize_key(key: str) -> str:
    return str(key).strip().lstrip("-").replace("-", "_")


def _entries(key: str, value: Any, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        values = [value]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        values = list(value)
    else:
        raise ConfigError(
            f"model card field '{key}' in {source} must be a string or a list of strings, got {type(value).__name__} {value!r}."
        )
    return tuple(v.strip() for v in values if v.strip())


def card_from_mapping(mapping: Mapping[str, Any], source: str) -> ModelCard:
    """A :class:`ModelCard` from a parsed TOML table or JSON object; a :class:`ConfigError` naming
    the unknown key or the value of the wrong type, and listing the fields."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"the model card in {source} must be a table of fields ({', '.join(CARD_KEYS)}).")
    values: dict[str, tuple[str, ...]] = {}
    for raw_key, value in mapping.items():
        key = _normalize_key(raw_key)
        if key not in CARD_KEYS:
            raise ConfigError(
                f"unknown model card field '{raw_key}' in {source}. The fields are: "
                f"{', '.join(k.replace('_', '-') for k in CARD_KEYS)} (dashes or underscores)."
            )
        if key in values:
            raise ConfigError(f"model card field '{key}' is given twice in {source} (under two spellings).")
        values[key] = _entries(key, value, source)
    return ModelCard(values, source)


def read_card_file(path: Path | str) -> ModelCard:
    """The card in ``path``: JSON (``.json``) or TOML, its fields at the top level or in ``[card]``."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".json":
        document = read_json(path, f"model card file {path}")
    else:
        document = read_toml(path)
    if isinstance(document, Mapping) and set(document) == {CARD_TABLE}:
        return card_from_mapping(document[CARD_TABLE], f"{path} [{CARD_TABLE}]")
    return card_from_mapping(document, str(path))
