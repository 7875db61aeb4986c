"""What installing the service costs: time and disk of the serve environment.

`python -m bench.install_footprint [--before REV]` clones this repository at HEAD (and at REV, for
a before/after comparison) into a temporary folder and, for each, measures on a warm pip cache:
  - the image's install step: `bash scripts/install.sh` (non-editable, as the Dockerfile runs it)
    into a fresh virtual environment, its wall time, the environment's size and whether it holds
    torch;
  - the README's serve command: `./scripts/serve.sh` on the fresh clone (it creates `.venv`,
    installs editable, starts the server), timed until /readyz answers 200.
Each install is run once untimed first, so the pip cache holds every wheel it needs. The result
goes into the README between `<!-- install:start -->` and `<!-- install:end -->`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from training.bundle import replace_readme_section

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Footprint:
    rev: str
    install_s: float
    venv_mb: float
    packages: int
    has_torch: bool
    serve_ready_s: float
    load: float  # the host's 1-minute load average when the measurement started


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def _venv_env(venv: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure_install(clone: Path, python: str) -> tuple[float, float, int, bool]:
    seconds = 0.0
    for attempt in ("warm-up", "timed"):
        venv = clone / f".venv-{attempt}"
        shutil.rmtree(venv, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        _run(["bash", "scripts/install.sh"], clone, _venv_env(venv))
        seconds = time.perf_counter() - started
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    has_torch = any(line.lower().startswith("torch==") for line in listed)
    return seconds, _size_mb(venv), len(listed), has_torch


def measure_serve(clone: Path) -> float:
    """`./scripts/serve.sh` on a clone without .venv: seconds until /readyz answers 200."""
    shutil.rmtree(clone / ".venv", ignore_errors=True)
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning"}
    env.pop("VIRTUAL_ENV", None)
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["bash", "scripts/serve.sh"], cwd=clone, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - started < 600:
            if proc.poll() is not None:
                raise RuntimeError(f"serve.sh exited with {proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("serve.sh not ready within 600 s")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def measure(rev: str, workdir: Path, python: str) -> Footprint:
    load = os.getloadavg()[0]
    clone = workdir / rev
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", rev], cwd=clone, check=True)
    install_s, venv_mb, packages, has_torch = measure_install(clone, python)
    serve_s = measure_serve(clone)
    sha = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True, capture_output=True, text=True
    ).stdout.strip()
    return Footprint(sha, install_s, venv_mb, packages, has_torch, serve_s, load)


def markdown(rows: list[tuple[str, Footprint]]) -> str:
    lines = [
        "| install | git | image's install step (s) | environment (MB) | packages | torch "
        "| README serve command to /readyz (s) | host load |",
        "|---|---|--:|--:|--:|---|--:|--:|",
    ]
    for label, f in rows:
        lines.append(
            f"| {label} | {f.rev} | {f.install_s:.0f} | {f.venv_mb:,.0f} | {f.packages} "
            f"| {'yes' if f.has_torch else 'no'} | {f.serve_ready_s:.0f} | {f.load:.1f} |"
        )
    when = time.strftime("%Y-%m-%d", time.gmtime())
    lines += [
        "",
        f"Measured by `python -m bench.install_footprint` ({when}, {os.cpu_count()} CPUs, warm pip cache, "
        "fresh virtual environments; the image's install step is `bash scripts/install.sh` into a new "
        "environment, as the Dockerfile runs it; the serve command's time includes creating `.venv`; "
        "host load: the 1-minute load average when the measurement began — the times grow with it, "
        "the sizes do not).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", help="also measure this revision (e.g. the commit before a change)")
    parser.add_argument("--python", default=shutil.which("python3.11") or sys.executable)
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    rows: list[tuple[str, Footprint]] = []
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        if args.before:
            rows.append(("before (torch in the runtime set)", measure(args.before, Path(tmp), args.python)))
            print(rows[-1], file=sys.stderr)
        rows.append(("now (runtime set, ONNX Runtime only)", measure("HEAD", Path(tmp), args.python)))
        print(rows[-1], file=sys.stderr)
    section = markdown(rows)
    print(section)
    if not args.no_readme:
        replace_readme_section("install", section, args.readme)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
