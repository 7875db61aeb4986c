"""Input limits shared by the tasks' `decode`, checked before any model work. Every violation is a
422 whose `loc` names the field and whose `ctx` holds the limit and the offending value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.errors import invalid
from app.core.text import is_blank

# How a text or token with nothing visible is refused, in every endpoint.
BLANK = "empty or whitespace only (control and zero-width characters count as whitespace)"


@dataclass(frozen=True, slots=True)
class InputLimits:
    """The request-size limits a task's `decode` enforces. No defaults of its own: built from
    `Settings.input_limits`, the one place they are defined."""

    max_items_per_request: int
    max_text_chars: int
    max_tokens_per_sequence: int
    max_series_values: int


def check_count(field: str, count: int, limit: int, noun: str) -> None:
    """`field` (a top-level body field) holds between 1 and `limit` items. The schemas document
    the lower bound (minItems) without enforcing it, so every endpoint words it the same way."""
    if count < 1:
        raise invalid(("body", field), f"{field} must hold at least 1 {noun}", limit=1, value=count)
    if count > limit:
        nouns = noun if noun.endswith("s") else noun + "s"  # "series" is its own plural
        raise invalid(
            ("body", field), f"at most {limit} {nouns} per request; got {count}", limit=limit, value=count
        )


def check_texts(field: str, texts: Sequence[str], max_chars: int) -> None:
    """Every text is non-blank and at most `max_chars` characters."""
    for i, text in enumerate(texts):
        if len(text) > max_chars:
            raise invalid(
                ("body", field, i),
                f"text has {len(text)} characters; the limit is {max_chars}",
                limit=max_chars,
                value=len(text),
            )
        if is_blank(text):
            raise invalid(("body", field, i), f"text is {BLANK}")
