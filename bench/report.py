"""Turns one run's results into the target verdicts, bench/results.md and the README section."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from bench import machine

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
FINDINGS_START, FINDINGS_END = "<!-- findings:start -->", "<!-- findings:end -->"

TARGET_WORKLOAD = "sentiment-review"
SPEEDUP_MIN = 2.0  # batched vs unbatched items/s at concurrency 64
CEILING_MIN = 0.70  # batched server items/s at concurrency 64 vs the model-only ceiling
TAIL_MAX = 3.0  # p99 / p50 at concurrency 16, batched


# ------------------------------------------------------------------------------------------ helpers


def _num(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def _cell(cells: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    for c in cells:
        if all(c.get(k) == v for k, v in match.items()):
            return c
    return None


def ceiling_of(result: dict[str, Any], backend: str, workload: str) -> dict[str, Any] | None:
    for c in result.get("ceilings", []):
        if c.get("backend") == backend:
            w: dict[str, Any] | None = c.get("workloads", {}).get(workload)
            return w
    return None


def ceiling_items_per_s(w: dict[str, Any]) -> float:
    """The ceiling a batched server is held to: the better of plain and length-grouped batches."""
    return max(float(w["bN"]["items_per_s"]), float(w["bN_grouped"]["items_per_s"]))


def _backends(result: dict[str, Any]) -> list[str]:
    seen: list[str] = []
    for c in result["cells"]:
        if c["backend"] not in seen:
            seen.append(c["backend"])
    return seen


def bundle_summaries(model_dir: Path, models: list[str]) -> dict[str, str]:
    """`{model: "version: architecture summary"}` of the bundles the servers load."""
    from app.core.bundle import BundleError, read_manifest, resolve_bundle_dir

    out: dict[str, str] = {}
    for name in models:
        try:
            m = read_manifest(resolve_bundle_dir(model_dir, name))
        except BundleError as exc:
            out[name] = f"unreadable ({exc})"
            continue
        out[name] = f"{m.version}: {m.architecture.get('summary', m.architecture.get('name', '?'))}"
    return out


# ------------------------------------------------------------------------------------------ targets


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three targets, per runtime, from this run's own cells (ONNX Runtime is the
    service default, so its rows are the verdict; TorchScript's are shown for comparison)."""
    out: list[dict[str, Any]] = []
    cells = result["cells"]
    wl = TARGET_WORKLOAD
    for backend in _backends(result):
        on64 = _cell(cells, workload=wl, backend=backend, batching=True, concurrency=64)
        off64 = _cell(cells, workload=wl, backend=backend, batching=False, concurrency=64)
        on16 = _cell(cells, workload=wl, backend=backend, batching=True, concurrency=16)
        ceil = ceiling_of(result, backend, wl)
        if on64 and off64 and off64["items_per_s"] > 0:
            ratio = on64["items_per_s"] / off64["items_per_s"]
            out.append(
                {
                    "backend": backend,
                    "target": f"batched / unbatched {wl} items/s at concurrency 64 >= {SPEEDUP_MIN:g}x",
                    "value": ratio,
                    "pass": ratio >= SPEEDUP_MIN,
                    "detail": f"{on64['items_per_s']:.1f} vs {off64['items_per_s']:.1f} items/s",
                }
            )
        if on64 and ceil:
            top = ceiling_items_per_s(ceil)
            ratio = on64["items_per_s"] / top
            out.append(
                {
                    "backend": backend,
                    "target": f"batched {wl} items/s at concurrency 64 "
                    f">= {CEILING_MIN:.0%} of the model-only ceiling",
                    "value": ratio,
                    "pass": ratio >= CEILING_MIN,
                    "detail": f"{on64['items_per_s']:.1f} vs ceiling {top:.1f} items/s "
                    f"(batches of {ceil['max_batch_size']}, in-process)",
                }
            )
        if on16 and on16["p50_ms"] and not math.isnan(on16["p99_ms"]):
            ratio = on16["p99_ms"] / on16["p50_ms"]
            out.append(
                {
                    "backend": backend,
                    "target": f"batched {wl} p99 < {TAIL_MAX:g}x p50 at concurrency 16",
                    "value": ratio,
                    "pass": ratio < TAIL_MAX,
                    "detail": f"p99 {on16['p99_ms']:.1f} ms, p50 {on16['p50_ms']:.1f} ms",
                }
            )
    return out


# ------------------------------------------------------------------------------------------- tables


def main_table(result: dict[str, Any]) -> str:
    head = (
        "| Workload | Clients | Runtime | Batching | req/s | items/s | p50 ms | p95 ms | p99 ms | Errors "
        "| Mean batch | Padding | Server CPU | Client CPU | Other CPU |\n"
        "|---|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    rows = [head]
    cells = result["cells"]
    names: list[str] = [w["name"] for w in result["workloads"]]
    backends = _backends(result)
    for name in names:
        wl_cells = [c for c in cells if c["workload"] == name]
        concs = sorted({c["concurrency"] for c in wl_cells})
        for conc in concs:
            for backend in backends:
                for batching in (True, False):
                    c = _cell(wl_cells, concurrency=conc, backend=backend, batching=batching)
                    if c is None:
                        continue
                    errs = str(c["errors"]) + (" " + str(c["error_kinds"]) if c["errors"] else "")
                    pad = c["mean_padding_fraction"]
                    rows.append(
                        f"| {name} | {conc} | {_rt(backend)} | {'on' if batching else 'off'} "
                        f"| {_num(c['rps'])} | {_num(c['items_per_s'])} | {_num(c['p50_ms'])} "
                        f"| {_num(c['p95_ms'])} | {_num(c['p99_ms'])} | {errs} "
                        f"| {_num(c['mean_batch_size'])} | {'-' if pad is None else f'{pad:.0%}'} "
                        f"| {_num(c['server_cpu_cores'], 2)} | {_num(c['client_cpu_cores'], 2)} "
                        f"| {_num(c.get('other_cpu_cores'), 2)} |"
                    )
        for backend in backends:
            w = ceiling_of(result, backend, name)
            if w is None:
                continue
            n = w["max_batch_size"]
            for label, key in (("model-only, 1/call", "b1"), (f"model-only, {n}/call", "bN")):
                rows.append(
                    f"| {name} | - | {_rt(backend)} | **{label}** | - | {_num(w[key]['items_per_s'])} "
                    "| - | - | - | - | - | - | - | - | - |"
                )
            rows.append(
                f"| {name} | - | {_rt(backend)} | **model-only, {n}/call length-grouped** | - "
                f"| {_num(w['bN_grouped']['items_per_s'])} | - | - | - | - "
                f"| {_num(w['bN_grouped']['items'] / max(1, w['bN_grouped']['calls']))} | - | - | - | - |"
            )
    return "\n".join(rows)


def _rt(backend: str) -> str:
    return {"onnx": "ONNX Runtime", "torchscript": "TorchScript"}.get(backend, backend)


def servers_table(result: dict[str, Any]) -> str:
    rows = [
        "| Server | Cold start (process start to /readyz 200) | RSS when ready | RSS after the load "
        "| Peak RSS | OS threads |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for s in result["servers"]:
        rows.append(
            f"| {s['label']} ({', '.join(s['models'])}) | {s['cold_start_s']:.1f} s "
            f"| {s['rss_ready_mib']:.0f} MiB "
            f"| {s['rss_after_load_mib']:.0f} MiB | {s['rss_peak_mib']:.0f} MiB | {s['threads']} |"
        )
    return "\n".join(rows)


def workloads_table(result: dict[str, Any]) -> str:
    rows = [
        "| Workload | Endpoint | Inputs | Items/request | Mean words / points | Model sequence length "
        "(mean / median / max) | Router preparation per request |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    for w in result["workloads"]:
        stats = w["stats"]
        words = stats.get("mean_words", stats.get("mean_points"))
        ceil = next(
            (ceiling_of(result, b, w["name"]) for b in _backends(result) if ceiling_of(result, b, w["name"])),
            None,
        )
        seq = (
            f"{ceil['mean_item_size']:.0f} / {ceil['median_item_size']} / {ceil['max_item_size']}"
            if ceil
            else "-"
        )
        prep = f"{ceil['prep_ms_per_request']:.2f} ms" if ceil else "-"
        rows.append(
            f"| {w['name']} | `POST {w['endpoint']}` | {w['source']} | {w['items_per_request']} "
            f"| {_num(words, 0)} | {seq} | {prep} |"
        )
    return "\n".join(rows)


def targets_block(result: dict[str, Any]) -> str:
    lines = []
    for t in result["targets"]:
        verdict = "**PASS**" if t["pass"] else "**FAIL**"
        lines.append(f"- {verdict} ({_rt(t['backend'])}) {t['target']}: **{t['value']:.2f}** ({t['detail']})")
    return "\n".join(lines) if lines else "- (no target could be computed: sentiment cells missing)"


def sweep_table(result: dict[str, Any]) -> str:
    sweep = result.get("sweep") or []
    if not sweep:
        return ""
    rows = [
        "| Change from the defaults | items/s, 64 clients | Mean batch, 64 | p50 / p99 ms, 64 "
        "| items/s, 16 | p50 / p99 ms, 16 (p99/p50) | p50 / p99 ms, 1 client | Server CPU, 64 |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    changes: list[str] = []
    for c in sweep:
        if c["change"] not in changes:
            changes.append(c["change"])
    for ch in changes:
        c64 = _cell(sweep, change=ch, concurrency=64)
        c16 = _cell(sweep, change=ch, concurrency=16)
        c1 = _cell(sweep, change=ch, concurrency=1)
        if not c64 or not c16 or not c1:
            continue
        rows.append(
            f"| {ch} | {_num(c64['items_per_s'])} | {_num(c64['mean_batch_size'])} "
            f"| {_num(c64['p50_ms'])} / {_num(c64['p99_ms'])} | {_num(c16['items_per_s'])} "
            f"| {_num(c16['p50_ms'])} / {_num(c16['p99_ms'])} ({_num(c16['p99_ms'] / c16['p50_ms'], 2)}) "
            f"| {_num(c1['p50_ms'])} / {_num(c1['p99_ms'])} | {_num(c64['server_cpu_cores'], 2)} |"
        )
    return "\n".join(rows)


def profile_block(result: dict[str, Any]) -> str:
    p = result.get("profile")
    if not p:
        return "(no profile in this run)"
    lines = [
        f"py-spy, {p['seconds']} s at {p['rate_hz']} Hz per recording, server `{p['config']}` under "
        f"`{p['workload']}` at {p['concurrency']} clients ({p['rps_during_profile']:.0f} req/s meanwhile).",
        "",
        f"**GIL held {p['gil_busy_fraction']:.0%} of the time**; by what its holder was doing:",
        "",
        "| GIL holder doing | share of wall time |",
        "|---|--:|",
    ]
    lines += [f"| {k} | {v:.0%} |" for k, v in p["gil_by_category"].items()]
    lines += ["", "Per thread (busy share of wall time, top categories):", ""]
    for kind, t in p["threads_busy"].items():
        cats = ", ".join(f"{k} {v:.0%}" for k, v in t["by_category"].items())
        lines.append(f"- {kind}: busy {t['busy_fraction']:.0%} — {cats}")
    lines += ["", "Hottest leaf frames while holding the GIL:", ""]
    lines += [f"- `{f}` {v:.1%}" for f, v in p["top_leaf_frames_gil"][:8]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ markdown


def _findings(previous: Path) -> str:
    if previous.exists():
        text = previous.read_text()
        m = re.search(re.escape(FINDINGS_START) + r"(.*?)" + re.escape(FINDINGS_END), text, re.S)
        if m:
            return m.group(1).strip()
    return "(not written yet: analysis of the profile and the sweep goes here; it survives re-runs)"


def results_markdown(result: dict[str, Any], previous: Path) -> str:
    m = result["machine"]
    o = result["options"]
    busy = m.get("other_busy_processes_at_start") or []
    parts = [
        "# Benchmark results",
        "",
        "Written by `python -m bench` (see `bench/run.py`); raw numbers of each run in `bench/runs/` "
        "(not committed). Re-running replaces everything here except the Findings section.",
        "",
        f"- **Command:** `{result['command'].strip()}` ({result['duration_s'] / 60:.1f} min)",
        f"- **Machine:** {machine.one_line(m)}",
        f"- **Server settings:** THREADS={o['threads']} MAX_BATCH_SIZE={o['max_batch_size']} "
        f"MAX_BATCH_WAIT_MS={o['max_batch_wait_ms']:g}, all bundles loaded in every server; load generator "
        f"and server share the same {m['usable_cpus']} CPUs.",
        f"- **Per cell:** {o['warmup']}+ warm-up requests (not measured), then at most {o['requests']} "
        f"requests or {o['time_cap_s']:g} s; closed loop (each client sends its next request when the "
        "previous one is answered), one item per request except the `-xN` row; latency is per request "
        "as the client sees it; mean batch and padding are the server's own `/metrics` over the cell.",
    ]
    if result.get("bundles"):
        parts.append("- **Bundles:** " + "; ".join(f"{k} {v}" for k, v in sorted(result["bundles"].items())))
    if busy:
        parts.append(f"- **Warning:** other processes were busy when the run started: {'; '.join(busy)}")
    if result.get("missing_models"):
        parts.append(f"- **Missing bundles (skipped):** {', '.join(result['missing_models'])}")
    parts += [
        "",
        "## Targets",
        "",
        targets_block(result),
        "",
        "## Results",
        "",
        "Server / client / other CPU: CPU-seconds of the server process / of the load generator / of "
        "everything else on the machine, per wall second (2.00 = both cores). "
        "Model-only rows: the same prepared items through the in-process Task's `predict_batch`, no HTTP.",
        "",
        main_table(result),
        "",
        "## Server start and memory (all models loaded)",
        "",
        servers_table(result),
        "",
        "## Workloads",
        "",
        workloads_table(result),
    ]
    sweep = sweep_table(result)
    if sweep:
        parts += [
            "",
            "## Batching settings sweep (ONNX Runtime, sentiment-review, only the sentiment model loaded)",
            "",
            sweep,
        ]
    parts += [
        "",
        "## Profile of the server under load",
        "",
        profile_block(result),
        "",
        "## Findings",
        "",
        FINDINGS_START,
        _findings(previous),
        FINDINGS_END,
        "",
    ]
    return "\n".join(parts)


def summary_text(result: dict[str, Any]) -> str:
    return "\n".join(["", main_table(result), "", servers_table(result), "", targets_block(result), ""])


def readme_section(result: dict[str, Any]) -> str:
    m = result["machine"]
    return "\n".join(
        [
            README_START,
            "## Benchmark",
            "",
            "`python -m bench` starts the real server (`python -m app`) once per configuration and drives "
            "every endpoint with a bounded load on 127.0.0.1; `python -m bench --quick` is a short smoke "
            "run. "
            "Full results, the profile and the settings sweep: [bench/results.md](bench/results.md).",
            "",
            f"Last run: {machine.one_line(m)}.",
            "",
            targets_block(result),
            "",
            main_table(result),
            "",
            servers_table(result),
            README_END,
        ]
    )


def update_readme(readme: Path, section: str) -> None:
    """Replace the text between the bench markers, or append the section at the end."""
    text = readme.read_text()
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(text)


def main(argv: list[str]) -> int:
    """`python -m bench.report bench/runs/<stamp>/results.json`: rewrite bench/results.md and the
    README section from a saved run (keeps the Findings section), e.g. after editing Findings."""
    import json

    bench_dir = Path(__file__).resolve().parent
    result = json.loads(Path(argv[0]).read_text())
    if "bundles" not in result:  # runs saved before bundles were recorded
        models = sorted({c["model"] for c in result["cells"]})
        result["bundles"] = bundle_summaries(Path(result["options"]["model_dir"]), models)
    (bench_dir / "results.md").write_text(results_markdown(result, bench_dir / "results.md"))
    update_readme(bench_dir.parent / "README.md", readme_section(result))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
