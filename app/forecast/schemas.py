"""Request and response bodies of POST /forecast."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from app.core.catalog import model_field
from app.core.errors import invalid

# Monthly airline passengers 1949-50 (Box & Jenkins), and a short unlabelled series.
_EXAMPLE: dict[str, Any] = {
    "series": [
        {
            "values": [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118,
                       115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140],
            "horizon": 6,
            "frequency": "MS",
            "timestamps": [f"{1949 + i // 12}-{i % 12 + 1:02d}-01" for i in range(24)],
        },
        {"values": [3.1, 2.9, 3.4, 3.3, 3.0, 3.6, 3.5, 3.2, 3.8, 3.7, 3.4, 4.0],
         "horizon": 3, "seasonality": 3},
    ],
    "levels": [80, 95],
}  # fmt: skip


# Values beyond this lose all precision in the float32 network input; refused with a 422.
MAX_ABS_VALUE = 1e15
SeasonSource = Literal["seasonality", "frequency", "timestamps", "estimated"]
# Longest season a request may name (a week of minutes, a year of hours fit; more is a typo).
MAX_SEASONALITY = 10_000
# Documented bound of each value; `validation.prepare_series` enforces it with its own message.
Value = Annotated[
    float, WithJsonSchema({"type": "number", "minimum": -MAX_ABS_VALUE, "maximum": MAX_ABS_VALUE})
]


def _integral(value: Any) -> Any:
    # JSON Schema counts 27.0 as an integer; strict validation alone would refuse it.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_integral)]
# pydantic writes the bounds of an optional, pre-validated int as "ge"/"le", which JSON Schema
# does not know; the schema is stated by hand so that clients (and schemathesis) see them.
Seasonality = Annotated[
    int,
    BeforeValidator(_integral),
    Field(ge=1, le=MAX_SEASONALITY),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_SEASONALITY}),
]


class SeriesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    values: list[Value] = Field(description="The history, oldest first, evenly spaced.")
    horizon: Integer = Field(ge=1, description="Steps to forecast (at most the model's horizon_max).")
    frequency: str | None = Field(
        None,
        description='pandas offset alias of the spacing ("D", "h", "MS", "W", "30min"); '
        "used with `timestamps` to date the forecast.",
    )
    timestamps: list[str] | None = Field(
        None,
        description="ISO 8601 time of each value (same count as `values`); when given, the "
        "forecast steps are dated, with the spacing from `frequency` or inferred from these.",
    )
    seasonality: Seasonality | None = Field(
        None,
        description="Season length in steps (12 for monthly data with a yearly cycle, 24 for hourly "
        "with a daily one, 1 for none). Without it the season length comes from `frequency`, "
        "else from the timestamps' spacing, else it is estimated from the values (autocorrelation).",
    )


class ForecastRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, json_schema_extra={"examples": [_EXAMPLE]})

    series: list[SeriesIn] = Field(
        json_schema_extra={"minItems": 1}, description="One or more independent series."
    )
    model: str | None = model_field()
    levels: list[float] = Field(
        default_factory=lambda: [80.0, 95.0],
        description="Central prediction-interval levels in percent; the model supports those listed "
        "under `preprocessing.interval_levels` in GET /models.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_non_finite(cls, data: Any) -> Any:
        """Python's JSON parser accepts NaN/Infinity literals. They are rejected here, before any
        other check, because a schema error would echo the offending input back and a JSON response
        cannot carry NaN (the error would turn into a 500)."""
        found = _first_non_finite(data, ("body",))
        if found is not None:
            loc, value = found
            raise invalid(loc, f"numbers must be finite; got {value}", "finite_number")
        return data


def _first_non_finite(value: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], float] | None:
    if isinstance(value, float):
        return None if math.isfinite(value) else (loc, value)
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_non_finite(item, (*loc, key))
        if found is not None:
            return found
    return None


class Interval(BaseModel):
    level: float = Field(description="Central coverage in percent.")
    lower: list[float]
    upper: list[float]


class SeriesForecast(BaseModel):
    point: list[float] = Field(description="Point forecast, one per step.")
    intervals: list[Interval]
    timestamps: list[str] | None = Field(
        None, description="Dates of the forecast steps, when timestamps were posted."
    )
    frequency: str | None = Field(None, description="The spacing used to date the steps.")
    history_used: int = Field(description="How many of the latest values the model read.")
    history_truncated: bool = Field(description="True when only the last `history_used` values were used.")
    season_length: int = Field(description="Season length used, in steps (1: none).")
    season_source: SeasonSource = Field(
        description="Where `season_length` came from: the request's `seasonality`, its `frequency`, "
        "the timestamps' spacing, or estimated from the values (autocorrelation rule)."
    )
    deseasonalised: bool = Field(
        description="True when the season was removed before forecasting (the history covers at least "
        "three seasons and its lag-m autocorrelation is significant at 90%, the M4 test)."
    )


class ForecastResponse(BaseModel):
    model: str
    version: str
    interval_levels: list[float] = Field(description="Interval levels this model offers, in percent.")
    forecasts: list[SeriesForecast]
