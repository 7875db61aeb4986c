"""Closed-loop HTTP load from `wrk` (Debian: `apt-get install wrk`), a C load generator that costs
the 2-core machine far less CPU per request than any Python client: N connections, each sending
its next request as soon as the previous answer arrives, cycling through a list of JSON bodies
(a Lua script), for a fixed time. Loopback only.

Latencies are wrk's own per-request measurements (all answers, 200 or not); `ok_rps` counts only
2xx answers.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_LUA = r"""
local bodies = {}
local i = 0
init = function(args)
  local f = assert(io.open(args[1], "r"))
  for line in f:lines() do if line ~= "" then bodies[#bodies + 1] = line end end
  f:close()
  i = tonumber(args[2]) or 0
end
request = function()
  if #bodies == 0 then return wrk.format("GET") end
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON {\"requests\": %d, \"duration_us\": %d, \"connect\": %d, \"read\": %d, \"write\": %d, " ..
    "\"status\": %d, \"timeout\": %d, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, " ..
    "\"max_us\": %.1f, \"mean_us\": %.1f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


class WrkMissingError(RuntimeError):
    pass


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkMissingError("wrk is not installed: `apt-get install -y wrk` (Debian/Ubuntu)")
    return found


@dataclass
class WrkResult:
    requests: int  # every answer
    non_2xx: int
    socket_errors: int  # connect/read/write errors and timeouts
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    client_cpu_s: float

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    @property
    def ok_rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else math.nan


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"the benchmark only sends load to 127.0.0.1, not {host!r}")


def run(
    url: str,
    bodies: list[bytes],
    connections: int,
    seconds: float,
    offset: int = 0,
    timeout_s: float = 30.0,
    threads: int = 1,
) -> WrkResult:
    """`connections` closed-loop clients POSTing `bodies` in turn (from `offset`) to `url`; with no
    bodies, GETting it."""
    _check_loopback(url)
    with tempfile.TemporaryDirectory(prefix="wrk-") as tmp:
        script, body_file = Path(tmp) / "bodies.lua", Path(tmp) / "bodies.txt"
        script.write_text(_LUA)
        # One JSON document per line (json.dumps escapes newlines inside strings).
        body_file.write_bytes(b"\n".join(b.replace(b"\n", b" ") for b in bodies) + b"\n")
        cmd = [
            wrk_path(),
            f"-t{max(1, min(threads, connections))}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(script),
            url,
            "--",
            str(body_file),
            str(offset % max(1, len(bodies))),
        ]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = _read_all(proc)
        # wait4: this child's own CPU time (the load generator must stay cheap, and we report it)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
    line = next((x for x in out.splitlines() if x.startswith("WRK_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out[-2000:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        requests=int(raw["requests"]),
        non_2xx=int(raw["status"]),
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        seconds=raw["duration_us"] / 1e6 or wall,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=raw["mean_us"] / 1000,
        client_cpu_s=usage.ru_utime + usage.ru_stime,
    )


def _read_all(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Both pipes to the end without reaping the process (wait4 does that, for its rusage)."""
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None
    assert stderr is not None
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.append(stderr.read()))
    reader.start()
    out = stdout.read()
    reader.join()
    return out, "".join(err_lines)
