from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.settings import Settings
from app.main import create_app
from tests.support.echo import write_echo_bundle

ECHO_PACKAGES = {"echo": "tests.support.echo"}


@pytest.fixture(scope="session")
def echo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("models")
    write_echo_bundle(model_dir)
    return model_dir


@pytest.fixture
def echo_client(echo_model_dir: Path) -> Callable[..., Any]:
    """Context manager giving a TestClient (lifespan run) over the echo bundle."""

    @contextmanager
    def make(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(_env_file=None, model_dir=echo_model_dir, **overrides)  # type: ignore[call-arg]
        with TestClient(create_app(settings, task_packages=ECHO_PACKAGES)) as client:
            yield client

    return make


@pytest.fixture(scope="session")
def score_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny bundles of all three tasks, made once for the bulk-scoring tests (both engines)."""
    from tests.score_support import write_models

    return write_models(tmp_path_factory.mktemp("score-models"))


@pytest.fixture
def score_env(score_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `python -m app.score` reads its settings from, pointing at those bundles."""
    from tests.score_support import set_env

    set_env(monkeypatch, score_model_dir)
