"""Schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

The /forecast schema states every rule JSON Schema can express; two it cannot: a series'
`timestamps` must be one ISO 8601 time per value, increasing, and `frequency` must be a pandas
offset alias. Generated calendars are made to fit those rules, so the positive-data check tests
the forecasting path rather than tripping over them. Non-string entries (the negative cases) are
left alone; the calendar's own refusals are tested in tests/test_messages.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import schemathesis


@schemathesis.hook("map_body")
def calendars_that_fit(ctx: schemathesis.HookContext, body: Any) -> Any:
    if ctx.operation is None or ctx.operation.path != "/forecast" or not isinstance(body, dict):
        return body
    for series in body.get("series") or []:
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
    return body
