"""Docker and compose wiring, checked without a Docker engine (none runs on CI machines)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.settings import Settings
from tests.support.settings_env import read_from_env, service_default

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
        assert read_from_env(monkeypatch, key, default) == service_default(key), key


def test_compose_port_volume_and_healthcheck_agree_with_settings() -> None:
    svc = compose_service()
    env = svc["environment"]
    container_port = str(env["PORT"])
    (mapping,) = svc["ports"]
    assert mapping.rsplit(":", 1)[1] == container_port
    (volume,) = svc["volumes"]
    source, target, mode = volume.rsplit(":", 2)
    # The shipped bundles unless MODEL_DIR_HOST names the user's own folder.
    assert (source, target, mode) == ("${MODEL_DIR_HOST:-./models}", env["MODEL_DIR"], "ro")
    test = " ".join(svc["healthcheck"]["test"])
    assert f"127.0.0.1:{env['PROBE_PORT']}/readyz" in test  # the probe port: answered under any load
    assert (svc["build"]["dockerfile"], svc["build"]["target"]) == ("Dockerfile", "cpu")
    # compose's grace period must outlast the service's own drain deadline
    grace = int(re.fullmatch(r"(\d+)s", svc["stop_grace_period"]).group(1))  # type: ignore[union-attr]
    drain = float(re.search(r"\d+", env["SHUTDOWN_DRAIN_S"]).group(0))  # type: ignore[union-attr]
    assert grace > drain


def _stages(dockerfile: str) -> list[str]:
    return re.split(r"^FROM ", (ROOT / dockerfile).read_text(), flags=re.M)[1:]


def test_dockerfiles_run_non_root_with_readiness_healthcheck() -> None:
    cpu, cuda = _stages("Dockerfile"), _stages("Dockerfile.cuda")
    assert [s.split()[2] for s in cpu] == ["models", "cpu"]  # the served stage last: the default target
    assert [s.split()[2] for s in cuda] == ["models", "cuda"]
    for stage in (cpu[-1], cuda[-1]):
        assert re.search(r"^USER app$", stage, re.M)
        assert "useradd" in stage
        assert "--uid 10001" in stage
        assert re.search(r"^HEALTHCHECK .*\n?.*/readyz' % os.environ.get\('PROBE_PORT'", stage, re.M)
        assert "PROBE_PORT=8001" in stage
        assert "bash scripts/install.sh" in stage  # the same install a local user runs
        assert 'CMD ["python", "-m", "app"]' in stage
        assert "ENV MODEL_DIR=/srv/models" in stage
        assert "COPY --from=models /models ./models" in stage
        # The default image serves with ONNX Runtime: no torch unless built with EXTRAS=torch.
        assert 'ARG EXTRAS=""' in stage
        assert 'install.sh "${EXTRAS}"' in stage
    assert "ORT_GPU=1" in cuda[-1]
    assert "ORT_GPU" not in "".join(cpu)


def test_cpu_image_needs_nothing_but_the_python_base() -> None:
    """Built without BuildKit (the legacy builder, compose v1) every stage of the file is built,
    and on a machine without a registry anything else to pull fails the build: the CPU file is
    FROM the Python base (or its own stages) only, has no `# syntax=` line (BuildKit pulls that
    frontend image) and no BuildKit-only instruction (the legacy builder refuses it)."""
    for name in ("Dockerfile", "Dockerfile.cuda"):
        text = (ROOT / name).read_text()
        assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I), name
        assert not re.search(r"^RUN\s+--(mount|network|security)", text, re.M), name
        assert not re.search(r"^(ADD|COPY)\s+--(link|chmod|parents|exclude)", text, re.M), name
    text = (ROOT / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "cuda" in line.lower()]
    bases = re.findall(r"^FROM\s+(\S+)", text, re.M)
    names = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, re.M)
    assert set(bases) == {"${PYTHON_IMAGE}"}, bases
    froms = re.findall(r"--from=(\S+)", text)
    assert set(froms) <= set(names), froms  # copies come from its own stages, never an image
    cuda_bases = set(re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile.cuda").read_text(), re.M))
    assert cuda_bases == {"${CUDA_IMAGE}"}


def _prune_command(dockerfile: str) -> str:
    stage = _stages(dockerfile)[0]
    (run,) = re.findall(r"^RUN (.*model\.pt.*)$", stage, re.M)
    return run


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
@pytest.mark.parametrize(
    ("extras", "keeps_pt"),
    [("", False), ("bulk", False), ("torch", True), ("bulk,torch", True), ("torchx", False)],
)
def test_image_carries_torchscript_graphs_only_with_torch(
    tmp_path: Path, dockerfile: str, extras: str, keeps_pt: bool
) -> None:
    """The models stage's own shell line, run on a copy of the bundles' layout."""
    import subprocess

    for bundle in ("sentiment/1.0.0", "ner/1.0.0"):
        (tmp_path / "models" / bundle).mkdir(parents=True)
        for name in ("model.pt", "model.onnx", "manifest.json"):
            (tmp_path / "models" / bundle / name).write_text("x")
    command = _prune_command(dockerfile).replace("/models", str(tmp_path / "models"))
    subprocess.run(["sh", "-c", command], env={"EXTRAS": extras, "PATH": "/usr/bin:/bin"}, check=True)
    left = sorted(p.name for p in (tmp_path / "models").rglob("*.*"))
    assert left.count("model.pt") == (2 if keeps_pt else 0)
    assert left.count("model.onnx") == 2
    assert left.count("manifest.json") == 2


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    """A change to app/ or README.md must not invalidate the layer that downloads the wheels."""
    for name in ("Dockerfile", "Dockerfile.cuda"):
        stage = _stages(name)[-1]
        install = stage.index('install.sh "${EXTRAS}"')
        assert stage.index("COPY app ./app") > install, name
        assert stage.index("COPY README.md ./") > install, name
        assert "PIP_NO_CACHE_DIR=1" in stage  # no pip cache inside the image


def test_readme_documents_the_image() -> None:
    readme = (ROOT / "README.md").read_text()
    docker = readme[readme.index("## Docker") :]
    for needed in (
        "Dockerfile.cuda",
        "--format docker",
        "MODEL_DIR_HOST",
        "kill -s HUP",
        "DOCKER_BUILDKIT=0",
    ):
        assert needed in docker, needed


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS_ENV if f"`{name}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
