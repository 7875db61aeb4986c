"""Client errors in one shape: FastAPI's own 422 body (`detail` is a list of {loc, msg, type}),
so a check done in code reads exactly like a check done by the schema."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException


class InputError(HTTPException):
    """A request a task cannot take. Over HTTP it is a 422 (FastAPI answers HTTPExceptions
    itself); callers outside HTTP (bulk scoring, the benchmark) read `errors`, the same list."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(status_code=422, detail=errors)
        self.errors = errors


def invalid(loc: tuple[str | int, ...], msg: str, type_: str = "value_error", **ctx: Any) -> InputError:
    """A 422 naming the field (`loc`, e.g. ("body", "texts", 3)) and, in `ctx`, the limit and
    the value that broke it."""
    detail: dict[str, Any] = {"loc": list(loc), "msg": msg, "type": type_}
    if ctx:
        detail["ctx"] = ctx
    return InputError([detail])
