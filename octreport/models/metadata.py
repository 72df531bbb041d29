"""What octreport saves beside a model so that loading it later needs no extra flags.

``MODEL.keras`` gets a sidecar ``MODEL.octreport.json`` with the class names, the preprocessing the
model expects, and, when octreport trained it, the training history and configuration and the
acquisition profile of its training images (:mod:`octreport.data.acquisition_profile`) and its
urgent-referral rule chosen on the validation split (:mod:`octreport.evaluation.referral_rule`);
sidecars written before either was recorded load without it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from octreport.data.acquisition_profile import AcquisitionProfile
from octreport.data.preprocessing import Preprocessing
from octreport.errors import ModelError
from octreport.evaluation.referral_rule import ReferralRule
from octreport.guarded import SHAPE_ERRORS, read_json

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".octreport.json"


@dataclass(frozen=True)
class ModelMetadata:
    class_names: tuple[str, ...]
    preprocessing: Preprocessing
    history: dict[str, list[float]] = field(default_factory=dict)
    best_epoch: int | None = None
    training: dict = field(default_factory=dict)
    octreport_version: str = ""
    training_profile: AcquisitionProfile | None = None
    """Sizes, file types, channels and brightness of the training images; None when unknown."""
    referral_rule: ReferralRule | None = None
    """The urgent-referral rule chosen on the validation split at training; None when none was stored."""

    def to_dict(self) -> dict:
        return {
            "class_names": list(self.class_names),
            "preprocessing": self.preprocessing.to_dict(),
            "history": self.history,
            "best_epoch": self.best_epoch,
            "training": self.training,
            "octreport_version": self.octreport_version,
            "training_profile": None if self.training_profile is None else self.training_profile.to_dict(),
            "referral_rule": None if self.referral_rule is None else self.referral_rule.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ModelMetadata":
        return cls(
            class_names=tuple(data["class_names"]),
            preprocessing=Preprocessing.from_dict(data["preprocessing"]),
            history={k: [float(v) for v in values] for k, values in data.get("history", {}).items()},
            best_epoch=data.get("best_epoch"),
            training=data.get("training", {}),
            octreport_version=data.get("octreport_version", ""),
            training_profile=(AcquisitionProfile.from_dict(data["training_profile"])
                              if data.get("training_profile") else None),
            referral_rule=ReferralRule.from_dict(data["referral_rule"]) if data.get("referral_rule") else None,
        )


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + SIDECAR_SUFFIX)


def write_metadata(model_path: Path, metadata: ModelMetadata) -> Path:
    path = sidecar_path(model_path)
    path.write_text(json.dumps(metadata.to_dict(), indent=2), encoding="utf-8")
    return path


def read_metadata(model_path: Path) -> ModelMetadata | None:
    """The sidecar of ``model_path``, or None when there is none (a model octreport did not train)."""
    path = sidecar_path(model_path)
    if not path.exists():
        return None
    try:  # the guarded reader: a sidecar is a user's file (size and depth capped, as every reader's)
        return ModelMetadata.from_dict(read_json(path, "the file", ModelError))
    except (ModelError, *SHAPE_ERRORS) as error:
        raise ModelError(
            f"'{path}' is not a valid octreport model description ({error}). "
            "Delete it to load the model without it, or retrain with `octreport train`."
        ) from error
