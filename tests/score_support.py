"""Shared by the bulk-scoring tests (local and Ray engines): tiny bundles for the three tasks,
the environment the command reads its settings from, fixture rows, and running the command."""

from __future__ import annotations

import json
import math
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

from app.score.__main__ import main
from tests import forecast_support, ner_support, sentiment_support

ROOT = Path(__file__).resolve().parents[1]
LIMITS = {"max_text_chars": 300, "max_series_values": 60}

REVIEWS = [
    "A great film.",
    "The plot was boring and the acting was bad, not good at all. " * 3,
    "loved it !",
    "awful , awful movie",
    "it was not good",
    "<br />The acting was great.<br /><br />Loved the film.",
    "a movie",
    "bad plot , good acting , great film",
]
DOCS = ["Angela Merkel met Emmanuel Macron in Paris.", "EU rejects German call to boycott British lamb."]


def write_models(root: Path) -> Path:
    """Tiny random-weight bundles of all three tasks under `root` (a MODEL_DIR)."""
    sentiment_support.write_tiny_bundle(root, cell="gru", head="attention", max_length=12)
    ner_support.write_tiny_bundle(root)
    forecast_support.write_tiny_bundle(root)
    return root


def set_env(monkeypatch: pytest.MonkeyPatch, model_dir: Path) -> None:
    """`python -m app.score` reads its settings from the environment, like the service."""
    monkeypatch.setenv("MODEL_DIR", str(model_dir))
    for key, value in LIMITS.items():
        monkeypatch.setenv(key.upper(), str(value))


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def score(*args: str | Path) -> dict[str, Any]:
    """Run the command in-process; return its summary line."""
    out = StringIO()
    with redirect_stdout(out):
        assert main([str(a) for a in (*args, "--no-progress")]) == 0
    result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return result


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def series(n: int, horizon: int = 3, phase: float = 0.0) -> dict[str, Any]:
    return {"values": [10.0 + math.sin(i / 2.0 + phase) for i in range(n)], "horizon": horizon}
