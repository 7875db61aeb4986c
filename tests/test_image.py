"""The container image, built and run as a user runs it: `docker build` of the CPU image, then
`docker run` (read-only root, a tmpfs, `--cpus 1`), SIGTERM under load, and `docker compose up`
from the repository's compose file.

Runs only where a Docker engine answers (`docker info`); elsewhere every test here is skipped with
that reason, which pytest's summary (`-ra`) and scripts/test.sh print. CI (.ci/run) starts an
engine first. Environment:
  DOCKER              the docker CLI (default /usr/bin/docker where present: Debian's CLI has
                      BuildKit built in, another one earlier on PATH may lack the buildx plugin)
  IMAGE_TEST_BUILDER  `legacy` (default: the builder compose v1 and older engines use, the one
                      that builds every stage of a Dockerfile) or `buildkit`
  IMAGE_TEST_REPORT   a file to write the measured figures to (JSON)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("DOCKER") or (
    "/usr/bin/docker" if Path("/usr/bin/docker").exists() else shutil.which("docker") or "docker"
)
IMAGE = "lstm-serve:cpu"  # the tag docker-compose.yml names, so `compose up` runs what was built here
BUILDER = os.environ.get("IMAGE_TEST_BUILDER", "legacy")
READY_TIMEOUT_S = 240.0  # three models to load and warm on a busy 2-core CI machine
GRACE_S = 30.0  # docker-compose.yml's stop_grace_period


def _engine_answers() -> bool:
    try:
        done = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(
        not _engine_answers(),
        reason=f"IMAGE TEST NOT RUN: no Docker engine answers (`{DOCKER} info` failed); "
        "CI starts one with ../shared/tools/docker-base.sh",
    ),
]

REVIEW = (
    "A moving, beautifully acted film. The story drags a little in the middle, but the last half "
    "hour is as good as anything this year, and the score is wonderful."
)
REQUESTS: dict[str, dict[str, Any]] = {
    "/sentiment": {"texts": [REVIEW]},
    "/ner": {"texts": ["Angela Merkel met Emmanuel Macron in Paris on Monday."]},
    "/forecast": {
        "series": [{"values": [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118], "horizon": 6}]
    },
}

FIGURES: dict[str, Any] = {}


def _record(**figures: Any) -> None:
    FIGURES.update(figures)
    report = os.environ.get("IMAGE_TEST_REPORT")
    if report:
        Path(report).write_text(json.dumps(FIGURES, indent=2) + "\n")


def docker(
    *args: str, timeout: float = 120, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [DOCKER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} -> {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


@pytest.fixture(scope="module")
def image() -> str:
    """The CPU image, built from this checkout the way a user builds it."""
    env = {"DOCKER_BUILDKIT": "0" if BUILDER == "legacy" else "1"}
    started = time.monotonic()
    docker("build", "-t", IMAGE, ".", timeout=1800, env=env)
    seconds = time.monotonic() - started
    size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE).stdout)
    base = int(
        docker("image", "inspect", "-f", "{{.Size}}", "python:3.11-slim-bookworm", check=False).stdout or 0
    )
    _record(builder=BUILDER, build_s=round(seconds, 1), image_mb=round(size / 1e6), base_mb=round(base / 1e6))
    return IMAGE


@dataclass
class Container:
    id: str
    url: str
    probe_url: str

    def logs(self) -> str:
        done = docker("logs", "--tail", "60", self.id, check=False)
        return done.stdout + done.stderr


@contextlib.contextmanager
def running(image: str, *args: str) -> Iterator[Container]:
    name = f"lstm-serve-test-{uuid.uuid4().hex[:8]}"
    cid = docker(
        "run", "-d", "--name", name, "-p", "127.0.0.1::8000", "-p", "127.0.0.1::8001", *args, image
    ).stdout
    cid = cid.strip()
    try:

        def mapped(port: int) -> str:
            host_port = docker("port", cid, str(port)).stdout.split()[0].rsplit(":", 1)[1]
            return f"http://127.0.0.1:{host_port}"

        yield Container(cid, mapped(8000), mapped(8001))
    finally:
        docker("rm", "-f", cid, check=False)


def wait_ready(url: str, container: Container | None = None, timeout: float = READY_TIMEOUT_S) -> float:
    """Seconds until GET `url`/readyz answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        if (
            container is not None
            and docker("inspect", "-f", "{{.State.Running}}", container.id).stdout.strip() != "true"
        ):
            raise AssertionError(f"the container exited before it was ready:\n{container.logs()}")
        time.sleep(0.5)
    raise AssertionError(f"not ready within {timeout} s" + (f":\n{container.logs()}" if container else ""))


def memory_mib(container: Container) -> float:
    usage = (
        docker("stats", "--no-stream", "--format", "{{.MemUsage}}", container.id).stdout.split("/")[0].strip()
    )
    number, unit = re.fullmatch(r"([0-9.]+)\s*([KMG]i?B)", usage).groups()  # type: ignore[union-attr]
    return float(number) * {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "kB": 1 / 1024, "MB": 1, "GB": 1024}[unit]


def test_the_image_serves_as_a_user_runs_it(image: str) -> None:
    """Read-only root filesystem with a tmpfs for the run folder, one CPU: ready, one request per
    endpoint, the docs, a non-root user, one worker, no TorchScript graphs, and `healthy`."""
    started = time.monotonic()
    with running(image, "--read-only", "--tmpfs", "/tmp", "--cpus", "1") as c:
        wait_ready(c.probe_url, c)
        ready_s = time.monotonic() - started  # from `docker run`, as a user waits
        with httpx.Client(base_url=c.url, timeout=30) as client:
            for path, body in REQUESTS.items():
                answer = client.post(path, json=body)
                assert answer.status_code == 200, (path, answer.text)
            assert client.post("/sentiment", json=REQUESTS["/sentiment"]).json()["predictions"][0]["label"]
            assert client.post("/ner", json=REQUESTS["/ner"]).json()["results"][0]["entities"]
            assert len(client.post("/forecast", json=REQUESTS["/forecast"]).json()["forecasts"]) == 1
            docs = client.get("/docs")
            assert docs.status_code == 200
            assert "swagger" in docs.text.lower()
            models = client.get("/models").json()["models"]
            assert {m["name"] for m in models} == {"sentiment", "ner", "forecast"}
            # --cpus 1: one worker, whichever cgroup version the host runs
            assert {m["workers"] for m in models} == {1}, models
            assert {m["backend"] for m in models} == {"onnx"}
            for _ in range(30):  # a little load, then the container's memory
                for path, body in REQUESTS.items():
                    assert client.post(path, json=body).status_code == 200
        assert docker("exec", c.id, "id", "-u").stdout.strip() == "10001"
        found = docker("exec", c.id, "find", "/srv/models", "-name", "model.pt").stdout.strip()
        assert found == "", f"TorchScript graphs in an image without torch: {found}"
        no_torch = docker("exec", c.id, "python", "-c", "import torch", check=False)
        assert no_torch.returncode != 0  # the runtime set: ONNX Runtime, no torch
        memory = memory_mib(c)
        deadline = time.monotonic() + 90  # HEALTHCHECK every 15 s: healthy at the first success
        health = ""
        while time.monotonic() < deadline:
            health = docker("inspect", "-f", "{{.State.Health.Status}}", c.id).stdout.strip()
            if health in ("healthy", "unhealthy"):
                break
            time.sleep(1)
        assert health == "healthy", c.logs()
    _record(ready_s_cpus1=round(ready_s, 1), memory_mib_cpus1_after_load=round(memory))


@dataclass
class Outcome:
    started: float
    ended: float
    status: int | None
    error: str = ""


# Four of the sixteen connections post the most a request may hold (MAX_ITEMS_PER_REQUEST, 64) of
# long reviews: each takes a good part of a second, so the drain lasts long enough for readiness
# to be seen turning 503 while accepted requests are still being answered.
HEAVY = {"texts": [REVIEW * 12] * 64}


@pytest.mark.parametrize("cpus", ["1", "2"])
def test_sigterm_under_load_drains_and_exits_within_the_grace_period(image: str, cpus: str) -> None:
    """16 connections posting reviews; SIGTERM: every request sent before it is answered 200, both
    /readyz say not ready within a second while those requests are still running, and the
    container exits well within the grace period. With one worker (`--cpus 1`) readiness can only
    turn 503 that early from the supervisor's mark; with two, uvicorn's supervisor runs too."""
    with running(image, "--read-only", "--tmpfs", "/tmp", "--cpus", cpus) as c:
        wait_ready(c.probe_url, c)
        workers = httpx.get(f"{c.url}/models", timeout=30).json()["models"][0]["workers"]
        assert workers == int(cpus)
        outcomes: list[Outcome] = []
        stop = threading.Event()

        def client_loop(body: dict[str, Any]) -> None:
            with httpx.Client(base_url=c.url, timeout=60) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    try:
                        status = client.post("/sentiment", json=body).status_code
                        outcomes.append(Outcome(started, time.monotonic(), status))
                    except httpx.HTTPError as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        outcomes.append(Outcome(started, time.monotonic(), None, error))
                        return  # the server went away: this client is done

        bodies = [HEAVY] * 4 + [REQUESTS["/sentiment"]] * 12
        clients = [threading.Thread(target=client_loop, args=(body,)) for body in bodies]
        for t in clients:
            t.start()
        time.sleep(3)  # load established on every connection
        memory = memory_mib(c)
        signalled = time.monotonic()
        docker("kill", "--signal", "TERM", c.id)
        unready: dict[str, tuple[float, str]] = {}

        def watch(name: str, url: str) -> None:
            while time.monotonic() - signalled < 5 and name not in unready:
                try:
                    status = httpx.get(f"{url}/readyz", timeout=0.5).status_code
                    if status != 200:
                        unready[name] = (time.monotonic() - signalled, str(status))
                except httpx.HTTPError as exc:  # not accepting any more: not ready either
                    unready[name] = (time.monotonic() - signalled, type(exc).__name__)
                time.sleep(0.05)

        watchers = [
            threading.Thread(target=watch, args=("probe", c.probe_url)),
            threading.Thread(target=watch, args=("service", c.url)),
        ]
        for t in watchers:
            t.start()
        exit_code = int(docker("wait", c.id, timeout=GRACE_S + 30).stdout.strip())
        exited_s = time.monotonic() - signalled
        stop.set()
        for t in [*clients, *watchers]:
            t.join(30)
        before = [o for o in outcomes if o.started < signalled]
        after = [o for o in outcomes if o.started >= signalled]
        lost = [o for o in before if o.status != 200]
        assert len(before) > 50, f"too little load to say anything: {len(before)} requests"
        assert not lost, (
            f"{len(lost)} of {len(before)} requests sent before SIGTERM not answered 200: {lost[:5]}"
        )
        # Sent after the signal: answered, or refused at the connection; never a server error.
        assert all(o.status in (200, None) for o in after), [o for o in after if o.status not in (200, None)]
        assert unready["probe"][1] == "503", unready
        assert unready["probe"][0] < 1.0, unready
        assert unready["service"][0] < 1.0, unready
        # Not ready while the drain still had work: some request sent before the signal was
        # answered after the probe port had said 503.
        last_answer_s = max(o.ended for o in before) - signalled
        assert last_answer_s > unready["probe"][0], (last_answer_s, unready)
        assert exited_s < GRACE_S, exited_s
        assert exit_code in (0, 143), (exit_code, c.logs())
    failed_after = [o for o in after if o.status is None]
    _record(
        **{
            f"sigterm_{workers}_workers": {
                "requests_before": len(before),
                "requests_after": len(after),
                "after_failed": len(failed_after),
                "after_errors": sorted({o.error.split(":")[0] for o in failed_after}),
                "after_failed_at_s": sorted({round(o.ended - signalled, 1) for o in failed_after}),
                "probe_unready_s": round(unready["probe"][0], 2),
                "service_unready": [round(unready["service"][0], 2), unready["service"][1]],
                "last_answer_s": round(last_answer_s, 2),
                "exit_s": round(exited_s, 1),
                "exit_code": exit_code,
                "memory_mib_under_load": round(memory),
            }
        }
    )


def _compose() -> list[str]:
    """`docker compose` (v2) where the CLI has it, else `docker-compose` (v1)."""
    if subprocess.run([DOCKER, "compose", "version"], capture_output=True).returncode == 0:
        return [DOCKER, "compose"]
    v1 = shutil.which("docker-compose", path=f"{Path(DOCKER).parent}:{os.environ.get('PATH', '')}")
    if v1 is None:
        pytest.fail("a Docker engine answers but neither `docker compose` nor `docker-compose` is installed")
    return [v1]


def test_compose_up_serves_and_comes_down(image: str) -> None:
    compose = _compose()
    project = f"lstmservetest{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = {
        **os.environ,
        "HOST_PORT": str(port),
        "PATH": f"{Path(DOCKER).parent}:{os.environ.get('PATH', '')}",
        # Only used if compose has to build (the image above is there under the tag it names).
        "DOCKER_BUILDKIT": "1",
        "COMPOSE_DOCKER_CLI_BUILD": "1",
    }

    def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose, "-p", project, *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=timeout,
        )

    started = time.monotonic()
    try:
        up = run("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{port}"
        wait_ready(url)
        ready_s = time.monotonic() - started  # from `compose up`
        answer = httpx.post(f"{url}/sentiment", json=REQUESTS["/sentiment"], timeout=30)
        assert answer.status_code == 200, answer.text
    finally:
        down = run("down", "--timeout", str(int(GRACE_S)))
    assert down.returncode == 0, down.stdout + down.stderr
    assert run("ps", "-q").stdout.strip() == ""
    _record(compose=" ".join([Path(compose[0]).name, *compose[1:]]), compose_ready_s=round(ready_s, 1))
