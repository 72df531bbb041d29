"""Run configuration: frozen dataclasses with their defaults in code, validated when built."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from octreport.data.preprocessing import Preprocessing
from octreport.errors import ConfigError

ARCHITECTURE_NAMES = ("notebook", "compact-bn")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. Validation data come from the train split, never from test."""

    architecture: str = "notebook"
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    augment: bool = True
    class_weights: bool = True
    early_stopping_patience: int = 5
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURE_NAMES:
            raise ConfigError(
                f"Unknown architecture '{self.architecture}'. Choose one of: {', '.join(ARCHITECTURE_NAMES)}."
            )
        _require(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}.")
        _require(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}.")
        _require(0 < self.learning_rate < 1, f"learning rate must be between 0 and 1, got {self.learning_rate}.")
        _require(self.early_stopping_patience >= 1, "early-stopping patience must be at least 1 epoch.")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            _require(0 < value < 0.9, f"{name.replace('_', ' ')} must be between 0 and 0.9, got {value}.")

    def to_dict(self) -> dict:
        return asdict(self)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)
