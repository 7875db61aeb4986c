"""deploy/kubernetes, checked without a cluster: every manifest validates against the Kubernetes
OpenAPI schemas (kubernetes-validate ships them, no network), the kustomizations render with
kustomize (the one built into kubectl), and the manifests agree with the app: every variable is a
setting, probes hit real routes on the configured port, the pod runs as the image's user, and the
grace period outlasts the drain."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.core.probes import probe_answer
from app.core.settings import Settings
from tests.support.settings_env import read_from_env, service_default

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
SETTINGS_ENV = {name.upper() for name in Settings.model_fields}
# The oldest Kubernetes release this deployment targets (autoscaling/v2 behaviour, policy/v1
# PDB, startup probes are all GA there) and the newest schemas the validator ships.
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
KUBECTL = shutil.which("kubectl")
needs_kustomize = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (with built-in kustomize) not installed"
)

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def kustomization(folder: Path) -> Doc:
    (doc,) = load_docs(folder / "kustomization.yaml")
    return doc


def base_resources() -> list[Doc]:
    return [d for name in kustomization(BASE)["resources"] for d in load_docs(BASE / name)]


def render(folder: Path) -> list[Doc]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(folder)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(docs: list[Doc], kind: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def container(docs: list[Doc]) -> Doc:
    (c,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(c)


def validate(doc: Doc) -> None:
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def rendered_sets() -> Iterator[tuple[str, list[Doc]]]:
    yield "base", render(BASE)
    yield "overlay", render(OVERLAY)


# ---------------------------------------------------------------- schemas


def test_every_base_manifest_validates() -> None:
    docs = base_resources()
    assert sorted(d["kind"] for d in docs) == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    for doc in docs:
        validate(doc)


def test_validator_rejects_a_broken_manifest() -> None:
    # The check above can fail: a misspelt field or a wrong type is refused in strict mode.
    deployment = one(base_resources(), "Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {"path": "/readyz"}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(typo)
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "forty"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(wrong_type)


def test_overlay_patches_target_base_resources() -> None:
    # Holds without kubectl too: each patch names a (kind, name) the base defines.
    defined = {(d["kind"], d["metadata"]["name"]) for d in base_resources()}
    overlay = kustomization(OVERLAY)
    assert overlay["resources"] == ["../../base", "models-pvc.yaml"]
    for patch in overlay["patches"]:
        (doc,) = load_docs(OVERLAY / patch["path"])
        assert (doc["kind"], doc["metadata"]["name"]) in defined, patch["path"]
    image_names = {c["image"].split(":")[0] for c in [container(base_resources())]}
    assert {i["name"] for i in overlay["images"]} <= image_names


@needs_kustomize
def test_rendered_base_and_overlay_validate() -> None:
    for label, docs in rendered_sets():
        assert len(docs) == (6 if label == "overlay" else 5), label
        for doc in docs:
            validate(doc)
    overlay = render(OVERLAY)
    assert {d["metadata"]["namespace"] for d in overlay} == {"lstm-serve"}
    assert container(overlay)["image"] == "registry.example.com/lstm-serve:0.1.0-cpu"
    # the example overlay fails closed without its API key Secret
    (api_key,) = [e for e in container(overlay)["env"] if e["name"] == "API_KEY"]
    assert api_key["valueFrom"]["secretKeyRef"]["optional"] is False
    assert one(overlay, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 3


# ---------------------------------------------------------------- agreement with the app


def settings_from(docs: list[Doc]) -> tuple[dict[str, str], set[str]]:
    """(ConfigMap data, names of the container's own env entries)."""
    c = container(docs)
    (source,) = c["envFrom"]
    config = one(docs, "ConfigMap")
    assert source["configMapRef"]["name"] == config["metadata"]["name"]
    return dict(config["data"]), {e["name"] for e in c.get("env", [])}


def all_sets() -> list[tuple[str, list[Doc]]]:
    if KUBECTL is None:
        return [("base", base_resources())]
    return list(rendered_sets())


def test_every_variable_is_a_setting_with_a_valid_value() -> None:
    for label, docs in all_sets():
        data, env_names = settings_from(docs)
        unknown = (set(data) | env_names) - SETTINGS_ENV
        assert not unknown, f"{label}: sets variables the service does not read: {unknown}"
        assert "API_KEY" not in data, "the API key belongs in a Secret"
        (api_key,) = [e for e in container(docs)["env"] if e["name"] == "API_KEY"]
        assert api_key["valueFrom"]["secretKeyRef"]["name"]
        # the values parse as the service would parse them
        Settings(_env_file=None, **{k.lower(): v for k, v in data.items()})  # type: ignore[call-arg]


# Base values that differ from the service's own defaults on purpose (the configmap's comments say
# why): the image's model folder, a pod's fixed CPU request instead of "auto".
CONFIGMAP_OWN_VALUES = {"MODEL_DIR", "DEVICE", "WORKERS", "THREADS"}


def test_base_configmap_repeats_the_services_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """The base lists the main settings for operators to see; a default changed in the service
    (REFUSAL_DELAY_MS went from 100 to 500) must change here too, or pods run the stale value."""
    data, _ = settings_from(base_resources())
    for key, value in data.items():
        if key not in CONFIGMAP_OWN_VALUES:
            # envFrom: the pod's environment carries each value, as compose's does
            assert read_from_env(monkeypatch, key, value) == service_default(key), key
    assert set(data) >= CONFIGMAP_OWN_VALUES


def test_probes_and_ports_match_the_app(tmp_path: Path) -> None:
    # What the probe port answers (a supervisor with no ready worker yet): 404 for anything else.
    dockerfile = (ROOT / "Dockerfile").read_text()
    uid = int(re.search(r"useradd .*--uid (\d+) app", dockerfile).group(1))  # type: ignore[union-attr]
    for label, docs in all_sets():
        data, _ = settings_from(docs)
        c = container(docs)
        port, probe_port = c["ports"]
        assert port["containerPort"] == int(data["PORT"]), label
        assert probe_port["containerPort"] == int(data["PROBE_PORT"]), label
        assert data["HOST"] == "0.0.0.0"
        probes = {kind: c[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert probes["readinessProbe"]["path"] == "/readyz"
        assert probes["startupProbe"]["path"] == "/readyz"  # liveness counts once the models are warm
        assert probes["livenessProbe"]["path"] == "/healthz"
        for probe in probes.values():
            assert probe_answer(probe["path"], tmp_path, workers=1)[0] in (200, 503), probe
            assert probe["port"] in (probe_port["name"], probe_port["containerPort"])
        service = one(docs, "Service")
        (sport,) = service["spec"]["ports"]
        assert sport["targetPort"] in (port["name"], port["containerPort"])
        pod = one(docs, "Deployment")["spec"]["template"]
        for selector in (
            service["spec"]["selector"],
            one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
            one(docs, "Deployment")["spec"]["selector"]["matchLabels"],
        ):
            assert selector.items() <= pod["metadata"]["labels"].items(), label
        target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", one(docs, "Deployment")["metadata"]["name"])
        assert c["image"].split(":")[0].endswith("lstm-serve")
        # non-root as the image's own user, read-only root with a writable /tmp
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert pod["spec"]["securityContext"]["runAsUser"] == uid
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
        assert set(mounts) <= {"/tmp", data["MODEL_DIR"]}, label
        if data["MODEL_DIR"] in mounts:  # your own models folder, read-only, from the claim the overlay makes
            models = mounts[data["MODEL_DIR"]]
            assert models["readOnly"] is True
            claim = volumes[models["name"]]["persistentVolumeClaim"]["claimName"]
            assert claim == one(docs, "PersistentVolumeClaim")["metadata"]["name"]
        # one runtime thread per requested core, over all workers
        assert int(c["resources"]["requests"]["cpu"]) == int(data["WORKERS"]) * int(data["THREADS"])
        assert {"cpu", "memory"} <= set(c["resources"]["limits"])


def test_grace_period_outlasts_pre_stop_and_drain() -> None:
    for label, docs in all_sets():
        data, _ = settings_from(docs)
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        pre_stop = container(docs)["lifecycle"]["preStop"]["exec"]["command"]
        assert pre_stop[0] == "sleep"
        budget = float(pre_stop[1]) + float(data["SHUTDOWN_DRAIN_S"])
        assert pod["terminationGracePeriodSeconds"] > budget, label
