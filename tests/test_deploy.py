"""Docker and compose wiring, checked without a Docker engine (none runs on CI machines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}


def compose_service() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert list(services) == ["lstm-serve"]
    return dict(services["lstm-serve"])


def test_compose_environment_names_real_settings() -> None:
    env = compose_service()["environment"]
    unknown = set(env) - SETTINGS_ENV
    assert not unknown, f"compose passes variables the service does not read: {unknown}"
    assert {"MODEL_DIR", "BACKEND", "DEVICE", "PORT", "API_KEY"} <= set(env)


# Compose values set by the image rather than the host's environment, and defaults that differ
# from the service's on purpose.
COMPOSE_FIXED = {"MODEL_DIR", "HOST", "PORT", "PROBE_PORT"}
COMPOSE_OWN_DEFAULTS = {"DEVICE": "cpu"}


def test_compose_passes_every_setting_with_the_services_default(monkeypatch: pytest.MonkeyPatch) -> None:
    env = compose_service()["environment"]
    assert set(env) == SETTINGS_ENV, f"compose lacks {SETTINGS_ENV - set(env)}"
    for name in Settings.model_fields:
        key = name.upper()
        if key in COMPOSE_FIXED:
            continue
        m = re.fullmatch(r"\$\{(\w+):-([^}]*)\}", str(env[key]))
        assert m, f"{key}: {env[key]!r} cannot be set from the host's environment"
        assert m.group(1) == key
        default = m.group(2)
        if key in COMPOSE_OWN_DEFAULTS:
            assert default == COMPOSE_OWN_DEFAULTS[key]
            continue
        # What the container reads when the host sets nothing is the service's own default.
        monkeypatch.setenv(key, default)
        read = getattr(Settings(_env_file=None), name)  # type: ignore[call-arg]
        monkeypatch.delenv(key)
        assert read == Settings.model_fields[name].get_default(call_default_factory=True), key


def test_compose_port_volume_and_healthcheck_agree_with_settings() -> None:
    svc = compose_service()
    env = svc["environment"]
    container_port = str(env["PORT"])
    (mapping,) = svc["ports"]
    assert mapping.rsplit(":", 1)[1] == container_port
    (volume,) = svc["volumes"]
    source, target, mode = volume.split(":")
    assert (source, target, mode) == ("./models", env["MODEL_DIR"], "ro")
    test = " ".join(svc["healthcheck"]["test"])
    assert f"127.0.0.1:{env['PROBE_PORT']}/readyz" in test  # the probe port: answered under any load
    assert svc["build"]["target"] == "cpu"
    # compose's grace period must outlast the service's own drain deadline
    grace = int(re.fullmatch(r"(\d+)s", svc["stop_grace_period"]).group(1))  # type: ignore[union-attr]
    drain = float(re.search(r"\d+", env["SHUTDOWN_DRAIN_S"]).group(0))  # type: ignore[union-attr]
    assert grace > drain


def test_dockerfile_runs_non_root_with_readiness_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert [s.split()[2] for s in stages] == ["cuda", "cpu"]  # cpu last: the default target
    for stage in stages:
        assert re.search(r"^USER app$", stage, re.M)
        assert "useradd" in stage
        assert "--uid 10001" in stage
        assert re.search(r"^HEALTHCHECK .*\n?.*/readyz' % os.environ.get\('PROBE_PORT'", stage, re.M)
        assert "PROBE_PORT=8001" in stage
        assert "bash scripts/install.sh" in stage  # the same install a local user runs
        assert 'CMD ["python", "-m", "app"]' in stage
        assert "ENV MODEL_DIR=/srv/models" in stage
    assert "ORT_GPU=1" in stages[0]
    # The default image serves with ONNX Runtime: no torch unless built with EXTRAS=torch.
    for stage in stages:
        assert 'ARG EXTRAS=""' in stage
        assert 'install.sh "${EXTRAS}"' in stage


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS_ENV if f"`{name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
