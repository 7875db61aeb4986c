"""Many models side by side: every MODEL_DIR/<name>/<version> bundle served by its manifest's task,
chosen per request with `model` ("name" or "name@version") or by default; each with its own
admission bound; a bad bundle skipped while the rest is served; and, against real processes,
a reload under load (SIGHUP) without a single failed request."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.core.catalog import model_in_body
from app.core.settings import Settings
from app.main import create_app
from tests.support.echo import SLOW, SLOW_SECONDS, write_echo_bundle
from tests.support.server import ROOT, free_port, running_server

PACKAGES = {"echo": "tests.support.echo", "twin": "tests.support.twin"}
ECHO_AND_TWIN = "tests.test_models:create_echo_and_twin"


def create_echo_and_twin() -> Any:
    """Factory for the real-process tests: the echo and twin tasks, settings from the environment."""
    return create_app(task_packages=PACKAGES)


def copy_bundle(source: Path, model_dir: Path, name: str, version: str) -> Path:
    """A new version (or a new name) of a bundle: the folders name it, the files stay as they are
    (checksums valid). Copied under a dotted name and renamed, as a deployment should: a reload
    never sees half a bundle."""
    staging = model_dir / name / f".{version}.partial"
    shutil.copytree(source, staging)
    return staging.rename(model_dir / name / version)


@pytest.fixture(scope="module")
def many_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """echo 1.0.0 and 1.1.0, fast 1.0.0 (also an echo model) and other 1.0.0 (a twin model)."""
    model_dir = tmp_path_factory.mktemp("many")
    first = write_echo_bundle(model_dir)
    copy_bundle(first, model_dir, "echo", "1.1.0")
    copy_bundle(first, model_dir, "fast", "1.0.0")
    write_echo_bundle(model_dir, name="other", task="twin")
    return model_dir


@contextmanager
def serving(model_dir: Path, **overrides: Any) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, model_dir=model_dir, **overrides)  # type: ignore[call-arg]
    with TestClient(create_app(settings, task_packages=PACKAGES)) as client:
        yield client


def answered_by(client: TestClient, model: str | None, path: str = "/echo") -> str:
    body: dict[str, Any] = {"values": [[1.0, 2.0]]}
    if model is not None:
        body["model"] = model
    r = client.post(path, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["sums"] == [3.0]
    return str(r.json().get("model"))


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(re.escape(name) + r"\{" + re.escape(want) + r"\} ([0-9.e+-]+)", text)
    assert found, f"{name}{{{want}}} not in metrics"
    return float(found.group(1))


# ------------------------------------------------------------------------------ choosing a model


def test_names_and_versions_are_chosen_per_request_and_by_default(many_models: Path) -> None:
    with serving(many_models) as client:
        assert answered_by(client, "echo") == "echo@1.1.0"  # the highest version
        assert answered_by(client, "echo@1.0.0") == "echo@1.0.0"  # exactly the one pinned
        assert answered_by(client, "echo@1.1.0") == "echo@1.1.0"
        assert answered_by(client, "fast") == "fast@1.0.0"
        assert answered_by(client, "other", "/twin") == "other@1.0.0"  # served by its manifest's task
        answered_by(client, None)  # no `model`: the model named after the task, highest version
        text = client.get("/metrics").text
        assert _metric(text, "lstm_model_requests_total", model="echo", version="1.1.0", status="200") == 3
        assert _metric(text, "lstm_items_total", model="echo", version="1.0.0") == 1
        listing = client.get("/models").json()
        assert listing["defaults"] == {"echo": "echo@1.1.0", "twin": "other@1.0.0"}
        assert listing["choices"]["echo"] == ["echo", "fast", "echo@1.0.0", "echo@1.1.0", "fast@1.0.0"]
        keys = [(m["key"], m["task"], m["default"], m["default_version"]) for m in listing["models"]]
        assert keys == [
            ("echo@1.0.0", "echo", False, False),
            ("echo@1.1.0", "echo", True, True),
            ("fast@1.0.0", "echo", False, True),
            ("other@1.0.0", "twin", True, True),
        ]
        assert client.get("/readyz").json()["models"] == [
            "echo@1.0.0",
            "echo@1.1.0",
            "fast@1.0.0",
            "other@1.0.0",
        ]
        # the OpenAPI document lists what the field accepts, per endpoint
        document = client.get("/openapi.json").json()
        schema = document["components"]["schemas"]["EchoRequest"]
        field = schema["properties"]["model"]
        enums = [b["enum"] for b in field["anyOf"] if "enum" in b]
        assert enums == [listing["choices"]["echo"]]
        assert "Served here: echo, fast" in field["description"]
        # and its description names every served version, not only each name's highest
        described = document["info"]["description"]
        assert "**echo** 1.0.0 (`POST /echo`)" in described
        assert "**echo** 1.1.0 (`POST /echo`, the default)" in described
        assert "**other** 1.0.0 (`POST /twin`, the default)" in described


def test_settings_choose_the_default_model_and_version(many_models: Path) -> None:
    with serving(many_models, default_models="echo=fast", model_versions="echo=1.0.0") as client:
        assert answered_by(client, "echo") == "echo@1.0.0"  # MODEL_VERSIONS pins it
        assert answered_by(client, "echo@1.1.0") == "echo@1.1.0"  # still reachable
        answered_by(client, None)
        text = client.get("/metrics").text
        assert _metric(text, "lstm_model_requests_total", model="fast", version="1.0.0", status="200") == 1
        assert client.get("/models").json()["defaults"]["echo"] == "fast@1.0.0"
    with pytest.raises(ValueError, match=r"default_models"):
        Settings(_env_file=None, default_models="echo")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("nope", "unknown model 'nope'"),
        ("echo@9.9.9", "model 'echo' has no version '9.9.9' here (served: ['1.0.0', '1.1.0'])"),
        ("other", "model 'other' is a twin model (POST /twin), not a echo model"),
        ("other@1.0.0", "model 'other' is a twin model"),
        ("", "unknown model ''"),
    ],
)
def test_a_model_not_served_by_the_endpoint_is_a_422_naming_the_field(
    many_models: Path, model: str, says: str
) -> None:
    with serving(many_models) as client:
        r = client.post("/echo", json={"values": [[1.0]], "model": model})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["loc"] == ["body", "model"]
    assert says in error["msg"]
    assert error["msg"].endswith("/echo serves: echo, fast, echo@1.0.0, echo@1.1.0, fast@1.0.0")
    assert error["ctx"]["served"] == ["echo", "fast", "echo@1.0.0", "echo@1.1.0", "fast@1.0.0"]


def test_a_model_field_that_is_not_a_string_is_a_422_naming_it(many_models: Path) -> None:
    with serving(many_models) as client:
        r = client.post("/echo", json={"values": [[1.0]], "model": 3})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "model"]


def test_the_door_reads_the_model_from_the_raw_body_only_when_plain() -> None:
    assert model_in_body(b'{"values": [[1]]}') == (True, None)
    assert model_in_body(b'{"values": [[1]], "model" : "echo@1.0.0"}') == (True, "echo@1.0.0")
    # a text quoting the field is not the field (quotes inside JSON strings are escaped)
    assert model_in_body(b'{"texts": ["say \\"model\\": \\"x\\""]}') == (True, None)
    assert model_in_body(b'{"texts": ["say \\"model\\": \\"x\\""], "model": "a"}') == (True, "a")
    # an escape in the value, or the key twice: left to the route, which parses the JSON
    assert model_in_body(b'{"model": "echo\\u00401.0.0"}') == (False, None)
    assert model_in_body(b'{"model": "a", "model": "b"}') == (False, None)


def test_the_door_reading_a_body_keeps_the_size_limit(many_models: Path) -> None:
    """Where the door reads bodies (several models behind /echo), a chunked body (no
    Content-Length) past MAX_BODY_BYTES is still a 413, and one within it still answers."""

    def chunks(total: int) -> Iterator[bytes]:
        yield b'{"model": "fast", "values": [['
        yield b" " * total
        yield b"1.0]]}"

    with serving(many_models, max_body_bytes=1024) as client:
        headers = {"content-type": "application/json"}
        r = client.post("/echo", content=chunks(5000), headers=headers)
        assert r.status_code == 413
        assert r.json()["detail"][0]["ctx"]["limit"] == 1024
        r = client.post("/echo", content=chunks(100), headers=headers)
        assert r.json() == {"sums": [1.0], "model": "fast@1.0.0"}


# ------------------------------------------------------------------------------------ isolation


def test_a_flood_on_one_model_leaves_the_others_answering(many_models: Path) -> None:
    """echo@1.0.0 holds its whole allowance with slow requests: more for it are refused at the
    door (503 naming it, counted under it), while echo@1.1.0 and fast answer at once."""
    with serving(many_models, max_queue_size=2, max_batch_size=1, refusal_delay_ms=0) as client:
        with ThreadPoolExecutor(2) as pool:
            slow = [
                pool.submit(client.post, "/echo", json={"values": [[SLOW]], "model": "echo@1.0.0"})
                for _ in range(2)
            ]
            batcher = client.app.state.lstm.services["echo@1.0.0"].batcher  # type: ignore[attr-defined]
            deadline = time.monotonic() + 5
            while batcher.in_flight < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            started = time.monotonic()
            refused = client.post("/echo", json={"values": [[1.0]], "model": "echo@1.0.0"})
            # spelt with an escape the door does not decode: the route's admission refuses it
            escaped = client.post(
                "/echo",
                content=b'{"values": [[1.0]], "model": "echo\\u00401.0.0"}',
                headers={"content-type": "application/json"},
            )
            others = [answered_by(client, m) for m in ("echo", "fast", "echo@1.1.0")]
            elapsed = time.monotonic() - started
            assert [f.result().status_code for f in slow] == [200, 200]
        assert elapsed < SLOW_SECONDS / 2, elapsed  # none of them waited for the slow model
        assert others == ["echo@1.1.0", "fast@1.0.0", "echo@1.1.0"]
        assert refused.status_code == 503
        assert "echo@1.0.0 is at capacity" in refused.json()["detail"]
        assert escaped.status_code == 503
        text = client.get("/metrics").text
        assert _metric(text, "lstm_model_requests_total", model="echo", version="1.0.0", status="503") == 2
        assert _metric(text, "lstm_model_requests_total", model="echo", version="1.0.0", status="200") == 2


# ------------------------------------------------------------------------------- bad bundles


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_broken_bundle_is_skipped_and_the_others_served(many_models: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    shutil.copytree(many_models, model_dir)
    broken = copy_bundle(model_dir / "echo" / "1.0.0", model_dir, "echo", "1.2.0")
    (broken / "model.onnx").write_bytes(b"tampered")
    unreadable = model_dir / "junk" / "0.1.0"
    unreadable.mkdir(parents=True)
    (unreadable / "manifest.json").write_text("{not json")
    app = create_app(Settings(_env_file=None, model_dir=model_dir), task_packages=PACKAGES)  # type: ignore[call-arg]
    kept = _Kept()
    logging.getLogger().addHandler(kept)  # after create_app, which sets the root's handlers
    with TestClient(app) as client:
        listing = client.get("/models").json()
        assert [m["key"] for m in listing["models"] if m["name"] == "echo"] == ["echo@1.0.0", "echo@1.1.0"]
        assert answered_by(client, "echo") == "echo@1.1.0"  # 1.2.0 is not served, so not the highest
        assert len(listing["skipped"]) == 2
        assert any("1.2.0" in s and "checksum mismatch" in s for s in listing["skipped"])
        assert any("junk/0.1.0/manifest.json is not valid JSON" in s for s in listing["skipped"])
        r = client.post("/echo", json={"values": [[1.0]], "model": "echo@1.2.0"})
        assert r.status_code == 422
    logging.getLogger().removeHandler(kept)
    # the access log says which model answered
    posted = [r for r in kept.records if r.getMessage() == "request" and getattr(r, "path", "") == "/echo"]
    assert next((getattr(r, "model", None), getattr(r, "version", None)) for r in posted) == ("echo", "1.1.0")
    refused = [r for r in kept.records if r.getMessage() == "bundle refused"]
    assert any("echo/1.2.0" in str(getattr(r, "bundle", "")) for r in refused)


def test_the_service_does_not_start_when_no_bundle_can_be_served(tmp_path: Path, many_models: Path) -> None:
    from app.core.bundle import BundleError

    broken = copy_bundle(many_models / "echo" / "1.0.0", tmp_path, "echo", "1.0.0")
    (broken / "model.pt").write_bytes(b"tampered")
    with pytest.raises(BundleError, match=r"could be served: .*checksum mismatch"), serving(tmp_path):
        pass


# --------------------------------------------------------------------------- real processes


async def _steady_load(
    url: str, connections: int, stop: asyncio.Event, statuses: dict[str, int], failures: list[str]
) -> None:
    """`connections` keep-alive clients in a closed loop until `stop`; every answer counted by
    its status (and model, for those that pin one), every transport error kept."""

    async def user(i: int) -> None:
        # a quarter pin the version that was there before the reload
        model = "echo@1.0.0" if i % 4 == 0 else None
        body: dict[str, Any] = {"values": [[float(i), 1.0]]} | ({"model": model} if model else {})
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            while not stop.is_set():
                try:
                    r = await client.post("/echo", json=body)
                except httpx.TransportError as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                key = str(r.status_code)
                statuses[key] = statuses.get(key, 0) + 1
                if r.status_code == 200 and r.json()["sums"] != [i + 1.0]:
                    failures.append(f"wrong answer {r.text}")

    await asyncio.gather(*(user(i) for i in range(connections)))


def _models(url: str) -> dict[str, Any]:
    listing: dict[str, Any] = httpx.get(f"{url}/models", timeout=10).json()
    return listing


def test_sighup_reload_under_load_loses_nothing(many_models: Path, tmp_path: Path) -> None:
    """One worker (the strictest case), 16 connections: SIGHUP after a new version is added. The
    new version answers within seconds, and not one request fails or finds its connection
    reset; requests pinned to the old version keep their answers. Then a broken bundle and
    another SIGHUP: refused with a log line naming it, and what was served keeps serving."""
    model_dir = tmp_path / "models"
    write_echo_bundle(model_dir)
    shutil.copytree(many_models / "other", model_dir / "other")
    # LOG_LEVEL stays at warning: nobody reads the pipe while the server runs, and the access
    # log of thousands of requests would fill it and block the server.
    env = {"MODEL_DIR": str(model_dir), "WORKERS": "1", "RELOAD_HANDOVER_S": "1"}
    with running_server(env, factory=ECHO_AND_TWIN) as (proc, url):
        statuses: dict[str, int] = {}
        failures: list[str] = []

        async def scenario() -> float:
            stop = asyncio.Event()
            load = asyncio.ensure_future(_steady_load(url, 16, stop, statuses, failures))
            await asyncio.sleep(1.0)
            copy_bundle(model_dir / "echo" / "1.0.0", model_dir, "echo", "1.1.0")
            sent = time.monotonic()
            proc.send_signal(signal.SIGHUP)
            async with httpx.AsyncClient(base_url=url, timeout=30) as probe:
                while True:
                    r = await probe.post("/echo", json={"values": [[1.0]], "model": "echo@1.1.0"})
                    assert r.status_code in (200, 422), r.text  # 422 until the new worker serves
                    if r.status_code == 200:
                        break
                    assert time.monotonic() - sent < 120, "the new version never answered"
                    await asyncio.sleep(0.1)
            took = time.monotonic() - sent
            await asyncio.sleep(2.5)  # the old worker's handover and drain happen under load
            stop.set()
            await load
            return took

        took = asyncio.run(scenario())
        assert not failures, failures[:5]
        assert set(statuses) == {"200"}, statuses
        assert statuses["200"] > 100, statuses
        assert took < 60, took
        listing = _models(url)
        assert listing["defaults"]["echo"] == "echo@1.1.0"
        assert [m["key"] for m in listing["models"]] == ["echo@1.0.0", "echo@1.1.0", "other@1.0.0"]

        broken = copy_bundle(model_dir / "echo" / "1.0.0", model_dir, "echo", "2.0.0")
        (broken / "model.onnx").write_bytes(b"tampered")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while not _models(url)["skipped"]:  # a new worker answers once it serves
            assert time.monotonic() < deadline, "no reload after the second SIGHUP"
            time.sleep(0.2)
        listing = _models(url)
        assert "echo/2.0.0" in listing["skipped"][0]
        assert "checksum mismatch" in listing["skipped"][0]
        assert listing["defaults"]["echo"] == "echo@1.1.0"
        assert httpx.post(f"{url}/echo", json={"values": [[2.0]], "model": "echo"}).json() == {
            "sums": [2.0],
            "model": "echo@1.1.0",
        }
    log = proc.stdout.read().decode() if proc.stdout else ""
    refused = [line for line in log.splitlines() if '"bundle refused"' in line]
    assert any("echo/2.0.0" in line and "checksum mismatch" in line for line in refused), log[-3000:]


def test_a_reload_whose_new_worker_cannot_start_leaves_the_old_one_serving(
    many_models: Path, tmp_path: Path
) -> None:
    """Every bundle broken under the running service (its one model tampered with on disk): the
    new worker cannot serve anything and exits; the reload is abandoned with a log line, and the
    running worker, which loaded the model before, keeps answering."""
    model_dir = tmp_path / "models"
    write_echo_bundle(model_dir)
    env = {"MODEL_DIR": str(model_dir), "WORKERS": "1"}
    with running_server(env, factory="tests.support.echo_app:create") as (proc, url):
        (model_dir / "echo" / "1.0.0" / "model.onnx").write_bytes(b"tampered")
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        ready = 0
        while ready < 20 and time.monotonic() < deadline:  # through the attempt and after it
            r = httpx.post(f"{url}/echo", json={"values": [[2.0, 1.0]]}, timeout=10)
            assert r.json() == {"sums": [3.0]}
            ready += 1
            time.sleep(0.5)
        assert proc.poll() is None
    log = proc.stdout.read().decode() if proc.stdout else ""
    assert '"reload abandoned' in log, log[-3000:]
    assert "checksum mismatch" in log


def test_reload_poll_notices_a_new_version(many_models: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_echo_bundle(model_dir)
    env = {"MODEL_DIR": str(model_dir), "WORKERS": "2", "RELOAD_POLL_S": "0.5", "RELOAD_HANDOVER_S": "0.2"}
    with running_server(env, factory="tests.support.echo_app:create") as (_, url):
        copy_bundle(model_dir / "echo" / "1.0.0", model_dir, "echo", "1.1.0")
        deadline = time.monotonic() + 120
        while True:
            r = httpx.post(f"{url}/echo", json={"values": [[1.0]], "model": "echo@1.1.0"}, timeout=10)
            if r.status_code == 200:
                break
            assert r.status_code == 422, r.text
            assert time.monotonic() < deadline, "RELOAD_POLL_S never reloaded"
            time.sleep(0.2)
        # both workers replaced: every answer now knows the new version (ten in a row). The
        # second worker starts only once the first replacement serves: on a busy 2-core machine
        # that took more than the 5 s this loop once allowed.
        in_a_row = 0
        while in_a_row < 10:
            r = httpx.post(f"{url}/echo", json={"values": [[1.0]], "model": "echo@1.1.0"}, timeout=10)
            in_a_row = in_a_row + 1 if r.status_code == 200 else 0
            if r.status_code != 200:
                assert r.status_code == 422, r.text
                assert time.monotonic() < deadline, "the second worker was never replaced"
                time.sleep(0.2)
        assert r.status_code == 200


def test_a_worker_that_dies_is_replaced(echo_model_dir: Path) -> None:
    env = {"MODEL_DIR": str(echo_model_dir), "WORKERS": "1"}
    with running_server(env, factory="tests.support.echo_app:create") as (proc, url):
        (worker,) = (
            int(p)
            for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            if "LSTM_SERVE_RUN_DIR" in Path(f"/proc/{p}/environ").read_text(errors="replace")
            and "multiprocessing.resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()
        )
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.post(f"{url}/echo", json={"values": [[1.0]]}, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "no worker replaced the one that died"
            time.sleep(0.2)
        assert proc.poll() is None


def test_a_probe_port_in_use_is_one_line_naming_port_and_setting(echo_model_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "MODEL_DIR": str(echo_model_dir),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "PROBE_PORT": str(port),
            "WORKERS": "1",
        }
        done = subprocess.run(
            [sys.executable, "-c", "from app.__main__ import main; main('tests.support.echo_app:create')"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"PROBE_PORT {port} on 127.0.0.1 is already in use (another instance on this host?): set "
        "PROBE_PORT to a free port, or PROBE_PORT=0 to turn the probe port off"
    )


def test_serving_with_onnx_runtime_never_imports_torch() -> None:
    """torch is installed here (tests need it), yet a worker serving the shipped models with
    ONNX Runtime must not load it: spaCy's thinc would import it, ~250 MB per worker."""
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from app.core.settings import Settings\n"
        "from app.main import create_app\n"
        "app = create_app(Settings(_env_file=None, models='sentiment,ner', backend='onnx'))\n"
        "with TestClient(app) as c:\n"
        "    assert c.post('/ner', json={'texts': ['Angela Merkel met Macron.']}).status_code == 200\n"
        "    assert c.post('/sentiment', json={'texts': ['A fine film.']}).status_code == 200\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "warning"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------------------- bulk scoring


def test_bulk_scoring_takes_a_model_like_a_request(
    score_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.score_support import REVIEWS, score, set_env, write_jsonl

    model_dir = tmp_path / "models"
    shutil.copytree(score_model_dir, model_dir)
    (shipped,) = (model_dir / "sentiment").iterdir()
    copy_bundle(shipped, model_dir, "mine", "2.0.0")
    set_env(monkeypatch, model_dir)
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in REVIEWS[:3]])
    assert score("sentiment", src, tmp_path / "a.jsonl")["model"] == f"sentiment@{shipped.name}"
    mine = score("sentiment", src, tmp_path / "b.jsonl", "--model", "mine@2.0.0")
    assert (mine["model"], mine["ok"]) == ("mine@2.0.0", 3)
    assert score("sentiment", src, tmp_path / "c.jsonl", "--model", "mine")["model"] == "mine@2.0.0"
    monkeypatch.setenv("DEFAULT_MODELS", "sentiment=mine")
    assert score("sentiment", src, tmp_path / "d.jsonl")["model"] == "mine@2.0.0"
    from app.score.__main__ import main

    with pytest.raises(SystemExit, match=r"--model / MODEL_DIR: no bundle 'mine' version '9\.0'"):
        main(["sentiment", str(src), str(tmp_path / "e.jsonl"), "--model", "mine@9.0", "--no-progress"])
    with pytest.raises(SystemExit, match=r"model 'forecast' .* is a forecast model, not a sentiment model"):
        main(["sentiment", str(src), str(tmp_path / "f.jsonl"), "--model", "forecast", "--no-progress"])
