"""How confidence intervals are computed: a frozen, validated setting with no NumPy behind it,
so that building a configuration (and ``octreport --help``) stays light."""

from __future__ import annotations

import math
from dataclasses import dataclass

from octreport.errors import ConfigError

MIN_RESAMPLES, MAX_RESAMPLES = 100, 100_000
MIN_LEVEL, MAX_LEVEL = 0.5, 0.999


@dataclass(frozen=True)
class BootstrapSettings:
    """How intervals are computed: ``resamples`` bootstrap draws, two-sided ``level``, ``seed``."""

    resamples: int = 2000
    level: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, int) or not (
            MIN_RESAMPLES <= self.resamples <= MAX_RESAMPLES
        ):
            raise ConfigError(
                f"bootstrap resamples must be a whole number from {MIN_RESAMPLES} to {MAX_RESAMPLES:,}, "
                f"got {self.resamples!r} (2,000 is the usual choice)."
            )
        if isinstance(self.level, bool) or not isinstance(self.level, (int, float)) or not (
            math.isfinite(self.level) and MIN_LEVEL <= self.level <= MAX_LEVEL
        ):
            raise ConfigError(
                f"confidence level must be between {MIN_LEVEL} and {MAX_LEVEL}, got {self.level!r} (e.g. 0.95 for 95%)."
            )

    @property
    def alpha(self) -> float:
        return 1.0 - float(self.level)

    def to_dict(self) -> dict[str, float | int]:
        return {"resamples": self.resamples, "level": self.level, "seed": self.seed}
