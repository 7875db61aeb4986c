"""The forecast bundle's `preprocessing` section: written by `training.forecast.export`, read by
`ForecastTask` at start-up. It holds the model's limits, the constants of the numpy pipeline
around the network (checked against this code, so a bundle trained with other ones fails at
start-up), the Theta combination weights and the calibrated interval table."""

from __future__ import annotations

from pydantic import Field, model_validator

from app.core.bundle import Section
from app.forecast import preprocess
from app.forecast.conformal import POOLED, IntervalTable


class IntervalBand(Section):
    lower: list[float] = Field(min_length=1)
    upper: list[float] = Field(min_length=1)


class ForecastSection(Section):
    min_window: int = Field(ge=1, description="Fewest values a history needs.")
    max_window: int = Field(ge=1, description="Latest values the network reads (left-padded to this width).")
    horizon_max: int = Field(ge=1, description="Most steps one forecast may ask for.")
    decompose_max: int = Field(ge=1, description="Latest values the seasonal indices are estimated from.")
    season_classes: list[int] = Field(description="Season lengths the network's static features name.")
    z_clip: float = Field(gt=0)
    theta_weights: dict[str, float] = Field(
        description='Weight of the classical Theta forecast by season length ("default" for others).'
    )
    interval_levels: list[int] = Field(min_length=1, description="Central interval levels in percent.")
    intervals: dict[str, dict[str, IntervalBand]] = Field(
        description="season length class -> level -> conformal error quantiles by step (MASE-scale units)."
    )
    scheme: str

    @model_validator(mode="after")
    def _consistent(self) -> ForecastSection:
        if self.max_window < self.min_window:
            raise ValueError(f"max_window {self.max_window} < min_window {self.min_window}")
        code = {
            "decompose_max": preprocess.DECOMPOSE_MAX,
            "season_classes": list(preprocess.SEASON_CLASSES),
            "z_clip": preprocess.Z_CLIP,
        }
        for name, expected in code.items():
            if getattr(self, name) != expected:
                raise ValueError(f"{name} {getattr(self, name)} differs from this code's {expected}")
        if "default" not in self.theta_weights or any(not 0 <= w <= 1 for w in self.theta_weights.values()):
            raise ValueError("theta_weights needs a 'default' and weights within [0, 1]")
        if POOLED not in self.intervals:
            raise ValueError(f"intervals needs the pooled class {POOLED!r}")
        for cls, levels in self.intervals.items():
            if sorted(int(lv) for lv in levels) != sorted(self.interval_levels):
                raise ValueError(f"intervals[{cls!r}] has levels {list(levels)}, not {self.interval_levels}")
        return self

    def interval_table(self) -> IntervalTable:
        return IntervalTable.from_json(
            {
                c: {lv: {"lower": b.lower, "upper": b.upper} for lv, b in levels.items()}
                for c, levels in self.intervals.items()
            }
        )

    def theta_weight(self, m: int) -> float:
        return self.theta_weights.get(str(m), self.theta_weights["default"])
