"""The Markdown report each training run writes beside its bundle (`REPORT.md`): the pieces the
three tasks share. The figures come from the run itself; the same ones go into the manifest."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPORT_NAME = "REPORT.md"


def machine() -> str:
    """The machine a run's times were measured on, in one line."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, Python {platform.python_version()}, {platform.system()}"


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A Markdown table; floats to `digits` places, integers with thousands separators."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(folder: Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """`folder/REPORT.md`: a title and (heading, Markdown body) sections, in order."""
    parts = [f"# {title}", ""]
    for heading, body in sections:
        parts += [f"## {heading}", "", body.rstrip(), ""]
    path = folder / REPORT_NAME
    tmp = path.with_suffix(".md.partial")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
