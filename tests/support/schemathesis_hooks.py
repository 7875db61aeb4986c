"""Schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The /forecast schema states every rule JSON Schema can express; two it cannot: a series'
`timestamps` must be one ISO 8601 time per value, increasing, and `frequency` must be a pandas
offset alias. Generated calendars are made to fit those rules, so the positive-data check tests
the forecasting path rather than tripping over them. Non-string entries (the negative cases) are
left alone; the calendar's own refusals are tested in tests/test_messages.py.

One more it chooses not to state: `levels` are integers in the schema, not an enum of the served
bundle's levels (a generated client must fit any bundle), and the service refuses a level its
model does not offer. Schema-valid levels (integers from 1 to 99) are mapped onto the offered
ones; others (the negative cases) are left alone. The refusal is tested in
tests/test_forecast_api.py.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import schemathesis

from app.core.bundle import read_manifest, resolve_bundle_dir

ROOT = Path(__file__).resolve().parents[2]


@cache
def offered_levels() -> list[int]:
    model_dir = Path(os.environ.get("MODEL_DIR", ROOT / "models"))
    manifest = read_manifest(resolve_bundle_dir(model_dir, "forecast"))
    return sorted(int(level) for level in manifest.preprocessing["interval_levels"])


def _schema_valid_level(level: Any) -> bool:
    integral = isinstance(level, int) or (isinstance(level, float) and level.is_integer())
    return integral and not isinstance(level, bool) and 1 <= level <= 99


@schemathesis.hook("map_body")
def calendars_that_fit(ctx: schemathesis.HookContext, body: Any) -> Any:
    if ctx.operation is None or ctx.operation.path != "/forecast" or not isinstance(body, dict):
        return body
    given = body.get("series")
    # Negative cases put any JSON value here (`true`, a string): only a list holds series.
    for series in given if isinstance(given, list) else []:
        if not isinstance(series, dict) or not isinstance(series.get("values"), list):
            continue
        stamps = series.get("timestamps")
        if isinstance(stamps, list) and all(isinstance(s, str) for s in stamps):
            start = date(2000, 1, 1)
            series["timestamps"] = [
                (start + timedelta(days=i)).isoformat() for i in range(len(series["values"]))
            ]
        if isinstance(series.get("frequency"), str):
            series["frequency"] = "D"
    levels = body.get("levels")
    if isinstance(levels, list):
        offered = offered_levels()
        body["levels"] = [offered[int(lv) % len(offered)] if _schema_valid_level(lv) else lv for lv in levels]
    return body
