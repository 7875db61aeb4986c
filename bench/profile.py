"""Where the server's time goes under load: py-spy samples of the server process, folded into
categories (model runtime, tokenisation, JSON/validation, HTTP/ASGI, event loop, batcher...).

Two recordings, both `--nonblocking` (the server is never paused):
- every thread's Python stack (`--threads`), to see what each thread is busy with;
- `--gil`: only the thread holding the GIL, whose sample count over rate x duration is how busy
  the GIL is. On a CPython server the GIL is the one lane every request's Python work shares.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# (category, patterns): the first pattern found scanning a stack from its leaf towards its root
# decides the sample's category.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("model runtime (ORT/torch call)", ("onnxruntime", "torch/", "torch\\", "torch.jit", "_call_impl")),
    ("model pre/post in Python (collate, pad, CRF, softmax)", ("predict_batch", "crf_decode", "features.py")),
    ("tokenisation (spaCy)", ("spacy", "tokenize (app/core/text.py", "text.py", "tokenizer")),
    (
        "request validation / JSON (pydantic, fastapi encoders, json)",
        (
            "pydantic",
            "json",
            "encoders.py",
            "serialize_response",
            "_prepare_response_content",
            "request_body_to_args",
            "solve_dependencies",
            "render (starlette/responses.py",
        ),
    ),
    ("metrics / middleware", ("prometheus_client", "middleware.py", "app/core/metrics.py", "logs.py")),
    ("micro-batcher", ("batching.py",)),
    (
        "HTTP / ASGI (uvicorn, httptools, starlette routing)",
        (
            "uvicorn",
            "httptools",
            "h11",
            "starlette",
            "fastapi",
            "anyio",
        ),
    ),
    (
        "event loop (uvloop I/O + callbacks) / thread hand-offs",
        ("asyncio", "uvloop", "concurrent/futures", "threading.py", "queue.py"),
    ),
]

_LINE = re.compile(r"^(?:thread \((?P<tid>[^)]*)\): )?(?P<stack>.*) (?P<count>\d+)$")
# Leaf frames of a thread that is waiting, not working (py-spy's own idle test misses some).
_IDLE_LEAVES = ("Condition.wait", "Queue.get", "Event.wait", "(selectors.py", "time.sleep", "Lock.acquire")
IDLE = "waiting (lock / queue / condition)"


def categorise(frames: list[str]) -> str:
    for frame in reversed(frames):
        for category, patterns in CATEGORIES:
            if any(p in frame for p in patterns):
                return category
    return "other"


def thread_kind(name: str) -> str:
    if name.startswith("MainThread"):
        return "event loop (MainThread)"
    if name.startswith("infer"):
        return "inference executor (infer_*)"
    if name.startswith(("AnyIO", "anyio", "ThreadPoolExecutor", "asyncio")):
        return "request thread pool (run_in_threadpool)"
    return "other threads"


@dataclass
class Profile:
    samples: int = 0
    by_category: Counter[str] = field(default_factory=Counter)
    by_thread: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    top_frames: Counter[str] = field(default_factory=Counter)


def parse_raw(path: Path) -> Profile:
    prof = Profile()
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if m is None:
            continue
        frames = m["stack"].split(";")
        thread, frames = (frames[0], frames[1:]) if m["tid"] is not None else ("?", frames)
        n = int(m["count"])
        cat = IDLE if frames and any(p in frames[-1] for p in _IDLE_LEAVES) else categorise(frames)
        prof.samples += n
        prof.by_category[cat] += n
        prof.by_thread[thread_kind(thread)][cat] += n
        if frames:
            prof.top_frames[frames[-1]] += n
    return prof


def py_spy() -> str | None:
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def record(pid: int, out: Path, seconds: int, rate: int, gil: bool) -> subprocess.Popen[bytes]:
    exe = py_spy()
    if exe is None:
        raise FileNotFoundError("py-spy is not installed (pip install py-spy; it is in the dev extra)")
    cmd = [exe, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate), "-f", "raw", "-o", str(out)]
    cmd += ["--nonblocking", "--threads"] + (["--gil"] if gil else [])
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _busy(c: Counter[str]) -> int:
    return sum(v for k, v in c.items() if k != IDLE)


def summarise(all_threads: Profile, gil: Profile, seconds: float, rate: int) -> dict[str, object]:
    possible = seconds * rate
    return {
        "seconds": seconds,
        "rate_hz": rate,
        "gil_busy_fraction": _busy(gil.by_category) / possible if possible else None,
        "gil_by_thread": {k: _busy(c) / possible for k, c in sorted(gil.by_thread.items())},
        "gil_by_category": {k: v / possible for k, v in gil.by_category.most_common() if k != IDLE},
        "threads_busy": {
            kind: {
                "busy_fraction": _busy(c) / possible,
                "by_category": {k: v / possible for k, v in c.most_common(7) if k != IDLE},
            }
            for kind, c in sorted(all_threads.by_thread.items())
        },
        "top_leaf_frames_gil": [(f, n / possible) for f, n in gil.top_frames.most_common(12)],
    }
