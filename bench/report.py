"""One run's results -> the target verdicts (the issue's targets), bench/results.md and the README
section. Every figure here comes from the run's own results.json."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path
from typing import Any

from bench import machine

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
COMPARED = ("sentiment-review", "sentiment-short", "ner")  # the workloads peers also serve
LOADED = (16, 64)
PEER_MARGIN = 1.2  # lstm-serve req/s >= 1.2x the best peer's at 16 and 64 connections
TAIL_MAX = 3.0  # p99 <= 3x p50 at 16 connections
CEILING_SHARE = 0.80  # >= 80% of the all-core pipeline ceiling at 64 connections
CEILING_WORKLOADS = ("sentiment-review", "sentiment-short")
PROBE_MAX_MS = 1000.0
# The overload probe that is reported but not judged (bench.run names its probes with it).
SERVICE_PORT_READYZ = "readyz on the service port"
RSS_MAX_MIB = 1.5 * 1024


def _num(x: Any, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def quantization(model_dir: Path, models: list[str]) -> dict[str, Any]:
    """Each bundle's `quantization` section (None where it ships no int8 graph)."""
    from app.core.bundle import BundleError, read_manifest, resolve_bundle_dir

    out: dict[str, Any] = {}
    for name in models:
        try:
            q = read_manifest(resolve_bundle_dir(model_dir, name)).quantization
        except BundleError:
            continue
        out[name] = None if q is None else q.model_dump()
    return out


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


# A cell's figures over its passes: counts add up, the worst latency is the worst, the rest are means.
_SUMMED = ("answers", "non_2xx", "socket_errors")


def mean_of_passes(passes: list[dict[str, Any]]) -> dict[str, Any]:
    """One cell from the same cell measured in several passes (`passes` keeps each pass's req/s,
    p50 and p99, so the report can show how far the passes were apart)."""
    merged = dict(passes[0])
    for key, value in passes[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool) and key != "connections":
            values = [p[key] for p in passes]
            if key in _SUMMED:
                merged[key] = sum(values)
            else:
                merged[key] = max(values) if key == "max_ms" else sum(values) / len(values)
    merged["passes"] = [{k: p.get(k) for k in ("rps", "p50_ms", "p99_ms")} for p in passes]
    return merged


def merge_passes(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cells of every pass, one per (server, workload, connections), in first-pass order."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for c in cells:
        groups.setdefault((c["target"], c["workload"], c["connections"]), []).append(c)
    return [mean_of_passes(group) for group in groups.values()]


def pass_spread(result: dict[str, Any]) -> str:
    """How far apart the passes of a cell were (req/s, max/min - 1), over every cell."""
    spreads = sorted(
        max(p["rps"] for p in c["passes"]) / min(p["rps"] for p in c["passes"]) - 1
        for c in result["cells"]
        if len(c.get("passes", [])) > 1 and min(p["rps"] for p in c["passes"]) > 0
    )
    if not spreads:
        return ""
    return (
        f"Each cell is the mean of {len(result['cells'][0]['passes'])} passes over the servers, the second "
        f"in reverse order (this shared VM's speed drifts over minutes); the passes of a cell differed by "
        f"{statistics.median(spreads) * 100:.0f}% in req/s at the median, {spreads[-1] * 100:.0f}% at most."
    )


def _cell(result: dict[str, Any], target: str, workload: str, connections: int) -> dict[str, Any] | None:
    cells: list[dict[str, Any]] = result["cells"]
    for c in cells:
        if c["target"] == target and c["workload"] == workload and c["connections"] == connections:
            return c
    return None


def _peer_names(result: dict[str, Any]) -> list[str]:
    return [s["name"] for s in result["servers"] if s["framework"] != "lstm-serve"]


def best_peer(result: dict[str, Any], workload: str, connections: int) -> dict[str, Any] | None:
    """The peer configuration with the most req/s in this cell (each peer's best of 1 or 2 workers
    is then simply the best over all of them)."""
    cells = [_cell(result, p, workload, connections) for p in _peer_names(result)]
    found = [c for c in cells if c is not None]
    return max(found, key=lambda c: c["rps"]) if found else None


def _lstm_serve(result: dict[str, Any]) -> dict[str, Any] | None:
    """lstm-serve's entry among the run's servers (absent when only peers ran)."""
    return next((s for s in result["servers"] if s["framework"] == "lstm-serve"), None)


def http_floor(result: dict[str, Any]) -> dict[str, Any] | None:
    """lstm-serve's GET /healthz at 64 connections: its HTTP stack alone, no model work."""
    me = _lstm_serve(result)
    floor: dict[str, Any] | None = None if me is None else me.get("http_floor")
    return floor


def _ceiling(result: dict[str, Any], workload: str) -> dict[str, Any] | None:
    c = result.get("ceilings") or {}
    w = c.get("workloads", {}).get(workload)
    return None if w is None else dict(w)


# ------------------------------------------------------------------------------------------ targets


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, passed: bool | None, measured: str) -> None:
        out.append({"target": name, "passed": passed, "measured": measured})

    for wl in COMPARED:
        for conc in LOADED:
            mine, peer = _cell(result, "lstm-serve", wl, conc), best_peer(result, wl, conc)
            if mine is None or peer is None:
                add(
                    f"{wl}, {conc} connections: >= {PEER_MARGIN}x the best peer's req/s", None, "not measured"
                )
                continue
            ratio = mine["rps"] / peer["rps"] if peer["rps"] else math.inf
            add(
                f"{wl}, {conc} connections: >= {PEER_MARGIN}x the best peer's req/s",
                ratio >= PEER_MARGIN,
                f"{ratio:.2f}x ({mine['rps']:.0f} vs {peer['rps']:.0f} req/s, {peer['target']})",
            )
        mine = _cell(result, "lstm-serve", wl, 16)
        if mine is not None:
            tail = mine["p99_ms"] / mine["p50_ms"] if mine["p50_ms"] else math.inf
            add(
                f"{wl}, 16 connections: p99 <= {TAIL_MAX:g}x p50",
                tail <= TAIL_MAX,
                f"{tail:.2f}x (p99 {mine['p99_ms']:.1f} ms, p50 {mine['p50_ms']:.1f} ms)",
            )
        mine, peers = (
            _cell(result, "lstm-serve", wl, 1),
            [c for p in _peer_names(result) if (c := _cell(result, p, wl, 1)) is not None],
        )
        if mine is not None and peers:
            fastest = min(peers, key=lambda c: c["p50_ms"])
            add(
                f"{wl}, 1 connection: p50 <= the best peer's",
                mine["p50_ms"] <= fastest["p50_ms"],
                f"{mine['p50_ms']:.2f} vs {fastest['p50_ms']:.2f} ms ({fastest['target']})",
            )
    floor = http_floor(result)
    for wl in CEILING_WORKLOADS:
        mine, ceil = _cell(result, "lstm-serve", wl, 64), _ceiling(result, wl)
        if mine is not None and ceil is not None:
            share = mine["rps"] / ceil["pipeline"]
            measured = f"{share:.0%} ({mine['rps']:.0f} of {ceil['pipeline']:.0f} items/s)"
            if (
                share < CEILING_SHARE
                and floor is not None
                and floor["rps"] < CEILING_SHARE * ceil["pipeline"]
            ):
                measured += (
                    f"; the HTTP stack alone (GET /healthz, no model work) answers {floor['rps']:.0f} req/s, "
                    f"{floor['rps'] / ceil['pipeline']:.0%} of this ceiling"
                )
            elif share < CEILING_SHARE and floor is not None and floor["rps"] > 0:
                # Both costs paid one after the other per request, on the same cores.
                both = 1 / (1 / ceil["pipeline"] + 1 / floor["rps"])
                measured += (
                    f"; the pipeline and the HTTP stack alone (GET /healthz, {floor['rps']:.0f} req/s) "
                    f"paid in turn allow {both:.0f} req/s ({both / ceil['pipeline']:.0%}): the rest is this "
                    "workload's own HTTP work (a POST body, JSON, validation) and the GIL the event loop "
                    "shares with the inference thread, see the py-spy profile"
                )
            add(
                f"{wl}, 64 connections: >= {CEILING_SHARE:.0%} of the all-core pipeline ceiling",
                share >= CEILING_SHARE,
                measured,
            )
    ov = result.get("overload")
    if ov:
        # The probes an orchestrator sends (probe port) and fresh requests; the service port's own
        # /readyz is reported beside them, not judged: it queues with the load by nature.
        judged = {k: v for k, v in ov["probe_max_ms"].items() if v is not None and k != SERVICE_PORT_READYZ}
        worst = max(judged.values())
        clean = not ov["wrong_answers"] and ov["socket_errors"] == 0 and ov["recovered"]
        add(
            f"overload ({ov['connections']} connections, MAX_QUEUE_SIZE={ov['max_queue_size']}): every fresh "
            f"request and /readyz answered within {PROBE_MAX_MS / 1000:g} s, accepted ones correct",
            worst <= PROBE_MAX_MS and clean,
            f"slowest probe {worst:.0f} ms ("
            + ", ".join(f"{k} {v:.0f}" for k, v in ov["probe_max_ms"].items() if v is not None)
            + f"); load p99 {ov['p99_ms']:.0f} ms, max {ov['max_ms']:.0f} ms; "
            f"{len(ov['wrong_answers'])} wrong, {ov['socket_errors']} socket errors, "
            f"recovered: {ov['recovered']}",
        )
    me = _lstm_serve(result)
    if me is not None:
        mem = me["memory_after_load"]
        add(
            f"memory of the whole service (every process) <= {RSS_MAX_MIB / 1024:g} GiB",
            mem["rss_mib"] <= RSS_MAX_MIB,
            f"RSS {mem['rss_mib']:.0f} MiB summed over {mem['processes']} processes "
            f"(PSS {mem['pss_mib']:.0f} MiB), after the load",
        )
    return out


def _verdict(t: dict[str, Any]) -> str:
    return {True: "**PASS**", False: "**FAIL**", None: "n/a"}[t["passed"]]


def targets_block(result: dict[str, Any]) -> str:
    return "\n".join(f"- {_verdict(t)} {t['target']}: {t['measured']}" for t in result["targets"])


# ------------------------------------------------------------------------------------------- tables


def side_by_side(result: dict[str, Any]) -> str:
    peers = _peer_names(result)
    head = [
        "Workload",
        "Conns",
        "lstm-serve req/s",
        "p50 ms",
        "p99 ms",
        *peers,
        "best peer",
        "ratio",
        "share of ceiling",
    ]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "--:|" * (len(head) - 2)]
    for wl in dict.fromkeys(c["workload"] for c in result["cells"]):
        for conc in sorted({c["connections"] for c in result["cells"] if c["workload"] == wl}):
            mine = _cell(result, "lstm-serve", wl, conc)
            best = best_peer(result, wl, conc)
            ceil = _ceiling(result, wl)
            peer_cols = []
            for p in peers:
                c = _cell(result, p, wl, conc)
                peer_cols.append(f"{_num(c['rps'])} ({_num(c['p99_ms'], 0)})" if c else "-")
            ratio = mine["rps"] / best["rps"] if mine and best and best["rps"] else None
            rows.append(
                "| "
                + " | ".join(
                    [
                        wl,
                        str(conc),
                        _num(mine["rps"]) if mine else "-",
                        _num(mine["p50_ms"]) if mine else "-",
                        _num(mine["p99_ms"]) if mine else "-",
                        *peer_cols,
                        best["target"] if best else "-",
                        f"**{ratio:.2f}**" if ratio is not None else "-",
                        f"{mine['rps'] / ceil['pipeline']:.0%}" if mine and ceil else "-",
                    ]
                )
                + " |"
            )
    return "\n".join(rows)


def ceilings_table(result: dict[str, Any]) -> str:
    c = result.get("ceilings")
    if not c:
        return "(ceilings not measured in this run)"
    names = [s["name"] for s in result["servers"]]
    rows = [
        f"All-core ceilings: {c['processes']} processes x {c['threads_per_process']} ONNX Runtime thread, "
        "in-process, no HTTP, batches of 32 cut by the batcher's length grouping; items/s summed over "
        "the processes, measured at the same time, with the graph lstm-serve serves (the peers serve "
        "the float32 graph). Then each server's req/s at 64 connections and its share of the pipeline "
        "ceiling.",
        "",
        "| Workload | Graph | Model only | Model only, TorchScript | Pipeline (decode + model) | "
        + " | ".join(names)
        + " |",
        "|---|---|--:|--:|--:|" + "--:|" * len(names),
    ]
    for name, w in c["workloads"].items():
        shares = []
        for server in names:
            cell = _cell(result, server, name, 64)
            shares.append(f"{_num(cell['rps'])} ({cell['rps'] / w['pipeline']:.0%})" if cell else "-")
        rows.append(
            f"| {name} | {w['precision']} | {_num(w['model'])} | {_num(w.get('model_torchscript'))} | "
            f"{_num(w['pipeline'])} | " + " | ".join(shares) + " |"
        )
    floor = http_floor(result)
    if floor is not None:
        rows += [
            "",
            f"The HTTP stack alone: lstm-serve answers `GET /healthz` (the same workers, middleware, access "
            f"log and metrics, no model work) at {_num(floor['rps'])} req/s with {floor['connections']} "
            "connections (p50 "
            f"{floor['p50_ms']:.1f} ms): no workload sent one input per request can be served faster "
            "on this stack.",
        ]
    return "\n".join(rows)


def servers_table(result: dict[str, Any]) -> str:
    rows = [
        "| Server | Processes | Cold start | RSS ready | RSS after load | PSS after load |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for s in result["servers"]:
        m0, m1 = s["memory_ready"], s["memory_after_load"]
        rows.append(
            f"| {s['name']} | {m1['processes']} | {s['cold_start_s']:.1f} s | {m0['rss_mib']:,.0f} MiB | "
            f"{m1['rss_mib']:,.0f} MiB | {m1['pss_mib']:,.0f} MiB |"
        )
    return "\n".join(rows)


def cpu_table(result: dict[str, Any]) -> str:
    rows = [
        "| Server | Workload | Conns | req/s | non-2xx | socket errors | server cores | wrk cores | "
        "other cores |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for c in result["cells"]:
        rows.append(
            f"| {c['target']} | {c['workload']} | {c['connections']} | {_num(c['rps'])} | {c['non_2xx']} | "
            f"{c['socket_errors']} | {c['server_cores']:.2f} | {c['client_cores']:.2f} | "
            f"{c['other_cores']:.2f} |"
        )
    return "\n".join(rows)


def _statuses(counts: dict[Any, int]) -> dict[int, int]:
    # A run's JSON turns the status codes into strings; written the same either way.
    return {int(status): n for status, n in counts.items()}


def overload_block(result: dict[str, Any]) -> str:
    ov = result.get("overload")
    if not ov:
        return "(overload phase not run)"
    return "\n".join(
        [
            f"lstm-serve at shipped settings except `MAX_QUEUE_SIZE={ov['max_queue_size']}`, "
            f"{ov['connections']} closed-loop connections of reviews for {ov['seconds']:.0f} s, while a "
            "probe opened a fresh connection every 100 ms for /readyz or /healthz on the probe port "
            "(PROBE_PORT, answered outside the request path), one new review, or /readyz on the service "
            "port (reported, not judged):",
            "",
            f"- load: {ov['ok']:,} answered 200 ({ov['ok_rps']:.0f}/s), {ov['non_2xx']:,} refused (503), "
            f"{ov['socket_errors']} socket errors; latency of every answer p50 {ov['p50_ms']:.0f} ms, "
            f"p99 {ov['p99_ms']:.0f} ms, max {ov['max_ms']:.0f} ms",
            "- probes, slowest of each: "
            + ", ".join(
                f"{k} {v:.0f} ms ({ov['probe_count'][k]} probes, "
                f"statuses {_statuses(ov['probe_statuses'][k])})"
                for k, v in ov["probe_max_ms"].items()
                if v is not None
            ),
            f"- wrong answers: {len(ov['wrong_answers'])}; "
            f"answers correctly after the load: {ov['recovered']}; "
            f"RSS {ov['memory_before']['rss_mib']:.0f} -> {ov['memory_after']['rss_mib']:.0f} MiB",
        ]
    )


def quantization_table(result: dict[str, Any]) -> str:
    rows = [
        "INT8 dynamic quantisation (`python -m training.quantize MODEL`; figures from each bundle's "
        "`quantization` section, accuracy on the full test split through the service's own pipeline, "
        "speed model-only with one thread). `PRECISION=auto` serves int8 only where the drop is at most "
        "0.2 points and the graph is faster.",
        "",
        "| Model | Metric (split) | float32 | int8 | change | speed-up, 1 item | speed-up, 32 items | "
        "default | served in this run |",
        "|---|---|--:|--:|--:|--:|--:|---|---|",
    ]
    me = _lstm_serve(result)
    served: dict[str, Any] = {} if me is None else me.get("models", {})
    for name, q in (result.get("quantization") or {}).items():
        if q is None:
            rows.append(f"| {name} | (no int8 graph in the bundle) | | | | | | | float32 |")
            continue
        rows.append(
            f"| {name} | {q['metric']} ({q['split']}) | {q['float32']:.2f} | {q['int8']:.2f} | "
            f"{-q['drop_points']:+.2f} | {q['speedup_batch_1']:.2f}x | {q['speedup_batch_32']:.2f}x | "
            f"{'yes' if q['default'] else 'no'} | {served.get(name, {}).get('precision', '-')} |"
        )
    return "\n".join(rows)


def profile_block(result: dict[str, Any]) -> str:
    profiles = result.get("profile")
    if not profiles:
        return "(not profiled in this run: `python -m bench --profile`)"
    lines = []
    for name, prof in profiles.items():
        gil = ", ".join(f"{k} {v:.0%}" for k, v in prof["gil_by_category"].items() if v >= 0.01)
        threads = "; ".join(
            f"{kind} busy {t['busy_fraction']:.0%}" for kind, t in prof["threads_busy"].items()
        )
        lines.append(
            f"- `{name}`, 64 connections, one worker: GIL held {prof['gil_busy_fraction']:.0%} of the "
            f"time, by {gil}. Threads: {threads}."
        )
    return "\n".join(lines)


def _other_load(result: dict[str, Any]) -> str:
    m = result["machine"]
    others = [c["other_cores"] for c in result["cells"]]
    worst = max(others) if others else 0.0
    lines = [
        f"Other CPU use on the machine during the cells (not the server, not wrk): mean "
        f"{sum(others) / max(1, len(others)):.2f} cores, worst cell {worst:.2f} cores.",
        f"Load average at start: {', '.join(f'{x:.2f}' for x in m['loadavg_at_start'])}.",
    ]
    for key, label in (
        ("other_busy_processes_at_start", "at start"),
        ("other_busy_processes_at_end", "at end"),
    ):
        if m.get(key):
            lines.append(f"Other busy processes {label}: " + "; ".join(f"`{p}`" for p in m[key]) + ".")
    return " ".join(lines)


NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"


def kept_notes(previous: Path) -> str:
    """The hand-written notes block of the previous results.md (reasons, context), kept as is."""
    try:
        text = previous.read_text()
    except OSError:
        return ""
    found = re.search(re.escape(NOTES_START) + r".*?" + re.escape(NOTES_END), text, re.S)
    return found.group(0) if found else ""


def results_markdown(result: dict[str, Any], previous: Path | None = None) -> str:
    m = result["machine"]
    failures = "".join(f"\n- {f['target']} failed: {f['error']}" for f in result.get("failures", []))
    return "\n".join(
        [
            "# Benchmark: lstm-serve side by side with LitServe, BentoML and Ray Serve",
            "",
            f"Command: `{result['command'].strip()}` ({result['duration_s'] / 60:.1f} min). "
            f"Machine: {machine.one_line(m)}.",
            "",
            _other_load(result),
            "",
            "Every server ran alone on 127.0.0.1, one after the other, serving the same bundles "
            + "; ".join(f"{k} {v}" for k, v in result["bundles"].items())
            + ". lstm-serve ran at its shipped settings (`python -m app`, nothing set but the port and "
            "model folder). The peers (bench/peers/, their own virtual environment `.venv-peers`) run the "
            "project's public pipeline per request (`Task.decode` / `predict_batch` / `encode`, the same "
            "tokenisation and the same answer body) on the float32 `model.onnx`, with their own batching "
            "(at most 32 per call), ONNX Runtime threads split so that workers x threads = cores. Load: "
            f"`wrk`, closed loop, one input per request, {result['options']['warmup']:g} s warm-up then "
            f"{result['options']['seconds']:g} s measured per cell"
            f"{' and pass' if result['options'].get('passes', 1) > 1 else ''}. {pass_spread(result)}",
            "",
            "## Targets",
            "",
            targets_block(result) + failures,
            "",
            "## Side by side (req/s of 200 answers; peers: req/s (p99 ms))",
            "",
            side_by_side(result),
            "",
            "Ratio: lstm-serve / best peer in that cell. Share of ceiling: lstm-serve / the all-core "
            "pipeline ceiling below.",
            "",
            "## Ceilings and each server's share",
            "",
            ceilings_table(result),
            "",
            "## Quantisation",
            "",
            quantization_table(result),
            "",
            "## Memory and start-up (every process of each server)",
            "",
            servers_table(result),
            "",
            "## Overload",
            "",
            overload_block(result),
            "",
            "## Where one worker's time goes (py-spy)",
            "",
            profile_block(result),
            "",
            "## Where the CPU went, per cell",
            "",
            cpu_table(result),
            "",
            "## Workloads",
            "",
            "\n".join(
                f"- `{w['name']}` ({w['endpoint']}): {w['source']}; {w['stats']}" for w in result["workloads"]
            ),
            "",
            kept_notes(previous) if previous is not None else "",
            "",
        ]
    )


def summary_text(result: dict[str, Any]) -> str:
    return targets_block(result)


def readme_section(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            README_START,
            "## Benchmark",
            "",
            "`python -m bench` runs lstm-serve at its shipped settings and, one at a time on the same "
            "machine, LitServe, BentoML and Ray Serve serving the same bundles (`bash bench/peers/setup.sh` "
            "makes their environment; `wrk` drives the load). Full results, the ceilings and the overload "
            "phase: [bench/results.md](bench/results.md).",
            "",
            f"Last run: {machine.one_line(result['machine'])}.",
            "",
            targets_block(result),
            "",
            side_by_side(result),
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
