"""What the service reads from its environment, for checks of deployment files that set it."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.settings import Settings


def read_from_env(monkeypatch: pytest.MonkeyPatch, key: str, value: str) -> Any:
    """The setting `key` as the service reads it when its environment says `value`: how a
    container gets what compose or a Kubernetes configmap sets (an empty string included)."""
    with monkeypatch.context() as m:
        m.setenv(key, value)
        return getattr(Settings(_env_file=None), key.lower())  # type: ignore[call-arg]


def service_default(key: str) -> Any:
    return Settings.model_fields[key.lower()].get_default(call_default_factory=True)
