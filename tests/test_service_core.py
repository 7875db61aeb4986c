from __future__ import annotations

from collections.abc import Callable
from typing import Any


def test_readyz_health_and_round_trip(echo_client: Callable[..., Any]) -> None:
    with echo_client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["models"] == ["echo"]
        r = client.post("/echo", json={"values": [[1, 2, 3], [4.5]]})
        assert r.status_code == 200 and r.json() == {"sums": [6.0, 4.5]}
        assert r.headers["x-request-id"]
