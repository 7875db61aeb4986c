"""The forecast bundle's `preprocessing` section: built by `training.forecast.export`, read by
`ForecastTask` at start-up. It holds the model's limits (window, horizon) and its quantiles."""

from __future__ import annotations

from pydantic import Field, model_validator

from app.core.bundle import Section


class Normalisation(Section):
    where: str
    scheme: str
    eps_rel: float = Field(ge=0)
    eps_abs: float = Field(ge=0)


class ForecastSection(Section):
    min_window: int = Field(ge=1, description="Fewest values a history needs.")
    max_window: int = Field(ge=1, description="Latest values the model reads; older ones are dropped.")
    horizon_max: int = Field(ge=1, description="Most steps one forecast may ask for.")
    quantile_levels: list[float] = Field(min_length=1, description="Output quantiles, increasing.")
    interval_levels: dict[str, tuple[float, float]] = Field(
        description='Central intervals in percent -> (lower, upper) quantile, e.g. "80": (0.1, 0.9).'
    )
    padding: str
    long_histories: str
    normalisation: Normalisation

    @model_validator(mode="after")
    def _consistent(self) -> ForecastSection:
        if self.max_window < self.min_window:
            raise ValueError(f"max_window {self.max_window} < min_window {self.min_window}")
        q = self.quantile_levels
        if any(not 0 < v < 1 for v in q) or q != sorted(set(q)) or 0.5 not in q:
            raise ValueError(f"quantile_levels {q} must increase within (0, 1) and hold the median 0.5")
        for name, pair in self.interval_levels.items():
            try:
                float(name)
            except ValueError:
                raise ValueError(f"interval level {name!r} is not a number") from None
            if any(v not in q for v in pair):
                raise ValueError(f"interval {name!r} {list(pair)} uses quantiles outside {q}")
        return self

    def interval_index(self, level: float) -> tuple[int, int] | None:
        """Indices of the (lower, upper) quantiles of the central `level`% interval, if offered."""
        for name, (lo, hi) in self.interval_levels.items():
            if abs(float(name) - level) < 1e-6:
                return self.quantile_levels.index(lo), self.quantile_levels.index(hi)
        return None

    @property
    def supported_levels(self) -> list[float]:
        return sorted(float(name) for name in self.interval_levels)

    @property
    def median_index(self) -> int:
        return self.quantile_levels.index(0.5)
