"""What the numbers were measured on: CPU, cores, memory, library versions, other load."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "onnxruntime", "numpy", "fastapi", "uvicorn", "pydantic", "spacy", "httpx", "uvloop")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_revision(repo: Path) -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def other_busy_processes() -> list[str]:
    """Command lines of other processes using CPU right now (e.g. training jobs)."""
    try:
        out = subprocess.run(
            ["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu", "--no-headers"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    busy = []
    for line in out.splitlines():
        pid, pcpu, args = line.split(None, 2)
        if int(pid) != os.getpid() and float(pcpu) >= 20.0 and "ps -eo" not in args:
            busy.append(f"{args[:100]} ({pcpu}% CPU)")
    return busy


def describe(repo: Path) -> dict[str, Any]:
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(m, 1) if (m := _mem_total_gib()) is not None else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": {p: _version(p) for p in PACKAGES},
        "git": _git_revision(repo),
        "loadavg_at_start": os.getloadavg(),
        "other_busy_processes_at_start": other_busy_processes(),
    }


def one_line(m: dict[str, Any]) -> str:
    p = m["packages"]
    return (
        f"{m['cpu']}, {m['usable_cpus']} CPUs, {m['memory_gib']} GiB, {m['os']}; Python {m['python']}, "
        f"torch {p['torch']}, onnxruntime {p['onnxruntime']}, fastapi {p['fastapi']}, "
        f"uvicorn {p['uvicorn']}, spaCy {p['spacy']}; git {m['git']}; {m['date_utc']}"
    )
