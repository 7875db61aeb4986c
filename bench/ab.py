"""`python -m bench.ab --old RUN... --new RUN... [--out FILE]`: lstm-serve's own req/s at two commits,
measured one after the other on the same machine (`python -m bench --no-peers --no-ceiling
--no-overload --no-write` in a worktree of each commit), cell by cell.

The published paired ratios (lstm-serve / best peer, bench/results.md) move with the machine as
well as with the code: a peer that gains more than lstm-serve on a different host lowers the
ratio with no change in lstm-serve. This table holds the machine still and changes only the code.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from bench import machine

Cell = tuple[str, int]


def passes(run_dirs: list[Path]) -> tuple[dict[Cell, list[float]], list[dict[str, Any]]]:
    """Each lstm-serve cell's req/s, one value per measured pass over all the runs given."""
    found: dict[Cell, list[float]] = {}
    machines = []
    for run in run_dirs:
        result = json.loads((run / "results.json").read_text())
        machines.append(result["machine"])
        for cell in result["cells"]:
            if cell["target"] != "lstm-serve":
                continue
            values = [p["rps"] for p in cell.get("passes") or [{"rps": cell["rps"]}]]
            found.setdefault((cell["workload"], cell["connections"]), []).extend(values)
    return found, machines


def _each(values: list[float]) -> str:
    return ", ".join(f"{x:,.0f}" for x in values)


def table(old: dict[Cell, list[float]], new: dict[Cell, list[float]]) -> tuple[list[str], float]:
    lines = [
        "| workload | conns | old req/s (passes) | new req/s (passes) | new / old |",
        "|---|--:|---|---|--:|",
    ]
    worst = float("inf")
    for key in sorted(set(old) & set(new), key=lambda k: (k[0], k[1])):
        a, b = statistics.mean(old[key]), statistics.mean(new[key])
        ratio = b / a
        worst = min(worst, ratio)
        lines.append(
            f"| {key[0]} | {key[1]} | {a:,.1f} ({_each(old[key])}) | {b:,.1f} ({_each(new[key])}) | "
            f"{ratio:.3f} |"
        )
    return lines, worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ab", description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--old", type=Path, nargs="+", required=True, help="bench/runs/<stamp> of the old commit")
    p.add_argument("--new", type=Path, nargs="+", required=True, help="bench/runs/<stamp> of the new commit")
    p.add_argument("--out", type=Path, default=None, help="write the Markdown here too")
    opts = p.parse_args(argv)
    old, old_machines = passes(opts.old)
    new, new_machines = passes(opts.new)
    lines, worst = table(old, new)
    runs = [
        f"- {label}: git {m['git']}, {m['date_utc']}; other processes using CPU: "
        f"{', '.join(m.get('other_busy_processes_at_start', [])) or 'none'}"
        for label, ms in (("old", old_machines), ("new", new_machines))
        for m in ms
    ]
    text = "\n".join(
        [
            "# Same machine, two commits: lstm-serve's own req/s (`python -m bench.ab`)",
            "",
            (__doc__ or "").split("\n\n")[1].replace("\n", " "),
            "",
            f"Machine: {machine.one_line(new_machines[-1])}.",
            "",
            *runs,
            "",
            *lines,
            "",
            f"Lowest new / old: {worst:.3f} ({(worst - 1) * 100:+.1f}%).",
            "",
        ]
    )
    print(text)
    if opts.out:
        opts.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
