"""The benchmark's verdicts are computed, not typed: from a made-up run, each target passes or
fails by the issue's rule (best peer of all configurations, p99/p50 at 16, share of the pipeline
ceiling, overload probes, memory), and the report renders every section."""

from __future__ import annotations

from typing import Any

from bench import report


def _cell(
    target: str, workload: str, conns: int, rps: float, p50: float = 10.0, p99: float = 20.0
) -> dict[str, Any]:
    framework = target.split(",")[0]
    return {
        "target": target,
        "framework": framework,
        "workload": workload,
        "connections": conns,
        "rps": rps,
        "answers": int(rps * 8),
        "non_2xx": 0,
        "socket_errors": 0,
        "p50_ms": p50,
        "p90_ms": p99,
        "p99_ms": p99,
        "max_ms": p99,
        "server_cores": 1.9,
        "client_cores": 0.05,
        "other_cores": 0.0,
    }


def _result() -> dict[str, Any]:
    cells = []
    for wl in report.COMPARED:
        for conns in (1, 16, 64):
            cells.append(_cell("lstm-serve", wl, conns, 300.0, p50=2.0 if conns == 1 else 50.0, p99=140.0))
            cells.append(_cell("LitServe, 1 worker", wl, conns, 200.0, p50=3.0))
            cells.append(_cell("LitServe, 2 workers", wl, conns, 260.0 if wl == "ner" else 240.0, p50=2.5))
    memory = {"rss_mib": 900.0, "pss_mib": 650.0, "processes": 4}
    server = {"cold_start_s": 9.0, "memory_ready": memory, "memory_after_load": memory}
    return {
        "command": "python -m bench",
        "duration_s": 600.0,
        "options": {"warmup": 2, "seconds": 6},
        "machine": {
            "cpu": "cpu",
            "usable_cpus": 2,
            "memory_gib": 23.5,
            "os": "Linux",
            "python": "3.11",
            "packages": {k: "1" for k in ("torch", "onnxruntime", "fastapi", "uvicorn", "spacy")},
            "git": "abc",
            "date_utc": "today",
            "loadavg_at_start": (0.1, 0.1, 0.1),
        },
        "bundles": {"sentiment": "1.0.0: x"},
        "quantization": {"sentiment": None},
        "workloads": [],
        "servers": [
            {"name": "lstm-serve", "framework": "lstm-serve", **server},
            {"name": "LitServe, 1 worker", "framework": "LitServe", **server},
            {"name": "LitServe, 2 workers", "framework": "LitServe", **server},
        ],
        "cells": cells,
        "ceilings": {
            "processes": 2,
            "threads_per_process": 1,
            "workloads": {
                "sentiment-review": {"precision": "float32", "model": 500.0, "pipeline": 350.0},
                "sentiment-short": {"precision": "float32", "model": 5000.0, "pipeline": 400.0},
            },
        },
        "overload": {
            "connections": 512,
            "max_queue_size": 64,
            "seconds": 10.0,
            "ok": 3000,
            "ok_rps": 300.0,
            "non_2xx": 9000,
            "socket_errors": 0,
            "p50_ms": 20.0,
            "p99_ms": 400.0,
            "max_ms": 900.0,
            "probe_max_ms": {"readyz": 120.0, "healthz": 80.0, "fresh": 1500.0},
            "probe_count": {"readyz": 30, "healthz": 30, "fresh": 30},
            "probe_statuses": {"readyz": {200: 30}, "healthz": {200: 30}, "fresh": {200: 10, 503: 20}},
            "wrong_answers": [],
            "recovered": True,
            "memory_before": memory,
            "memory_after": memory,
        },
    }


def test_verdicts_follow_the_issue_rules() -> None:
    result = _result()
    verdicts = {t["target"]: t for t in report.targets(result)}
    review16 = verdicts["sentiment-review, 16 connections: >= 1.2x the best peer's req/s"]
    assert review16["passed"] is True  # 300 / 240 = 1.25, against the better LitServe configuration
    assert "1.25x" in review16["measured"]
    assert "LitServe, 2 workers" in review16["measured"]
    ner64 = verdicts["ner, 64 connections: >= 1.2x the best peer's req/s"]
    assert ner64["passed"] is False  # 300 / 260 = 1.15
    tail = verdicts["ner, 16 connections: p99 <= 3x p50"]
    assert tail["passed"] is True  # 140 / 50
    one = verdicts["sentiment-short, 1 connection: p50 <= the best peer's"]
    assert one["passed"] is True  # 2.0 vs 2.5 ms
    share = {k: v for k, v in verdicts.items() if "pipeline ceiling" in k}
    assert (
        share["sentiment-review, 64 connections: >= 80% of the all-core pipeline ceiling"]["passed"] is True
    )
    assert (
        share["sentiment-short, 64 connections: >= 80% of the all-core pipeline ceiling"]["passed"] is False
    )
    overload = next(v for k, v in verdicts.items() if k.startswith("overload"))
    assert overload["passed"] is False  # one fresh request took 1.5 s
    assert "fresh 1500" in overload["measured"]
    memory = next(v for k, v in verdicts.items() if k.startswith("memory"))
    assert memory["passed"] is True


def test_report_renders_every_section() -> None:
    result = _result()
    result["targets"] = report.targets(result)
    text = report.results_markdown(result)
    for heading in (
        "## Targets",
        "## Side by side",
        "## Ceilings",
        "## Quantisation",
        "## Memory",
        "## Overload",
    ):
        assert heading in text
    assert "| sentiment-review | 64 | 300.0 |" in text
    assert "**1.25**" in text
    section = report.readme_section(result)
    assert section.startswith(report.README_START)
    assert section.endswith(report.README_END)


def test_a_ceiling_out_of_reach_of_the_http_stack_says_so() -> None:
    """The short-text ceiling (400 items/s) is above what GET /healthz reached (250 req/s): the
    verdict names that measured reason; the review ceiling (350) is met and needs no reason."""
    result = _result()
    result["servers"][0]["http_floor"] = {"connections": 64, "rps": 250.0, "p50_ms": 5.0, "p99_ms": 9.0}
    verdicts = {t["target"]: t for t in report.targets(result)}
    name = "sentiment-short, 64 connections: >= 80% of the all-core pipeline ceiling"
    short = verdicts[name]
    assert short["passed"] is False
    assert "GET /healthz, no model work) answers 250 req/s, 62% of this ceiling" in short["measured"]
    review = verdicts["sentiment-review, 64 connections: >= 80% of the all-core pipeline ceiling"]
    assert "healthz" not in review["measured"]
    text = report.results_markdown(result | {"targets": report.targets(result)})
    assert "lstm-serve answers `GET /healthz`" in text
    del result["servers"][0]["http_floor"]  # runs from before the floor was measured
    again = {t["target"]: t for t in report.targets(result)}
    assert (
        "healthz"
        not in again["sentiment-short, 64 connections: >= 80% of the all-core pipeline ceiling"]["measured"]
    )


def test_passes_merge_into_one_cell_per_server_workload_and_connections() -> None:
    first = _cell("lstm-serve", "ner", 16, 300.0, p50=10.0, p99=30.0)
    second = _cell("lstm-serve", "ner", 16, 500.0, p50=6.0, p99=50.0) | {"max_ms": 90.0}
    other = _cell("LitServe, 1 worker", "ner", 16, 200.0)
    merged = report.merge_passes([first, other, second, other])
    assert [(c["target"], c["rps"]) for c in merged] == [("lstm-serve", 400.0), ("LitServe, 1 worker", 200.0)]
    me = merged[0]
    assert (me["p50_ms"], me["p99_ms"], me["max_ms"]) == (8.0, 40.0, 90.0)
    assert (me["answers"], me["connections"]) == (2400 + 4000, 16)
    assert me["passes"] == [
        {"rps": 300.0, "p50_ms": 10.0, "p99_ms": 30.0},
        {"rps": 500.0, "p50_ms": 6.0, "p99_ms": 50.0},
    ]
    spread = report.pass_spread({"cells": merged})
    assert "mean of 2 passes" in spread
    assert "33% in req/s at the median, 67% at most" in spread


def test_a_ceiling_missed_within_reach_of_the_http_stack_gives_the_bound_both_allow() -> None:
    """Reviews at 300 req/s of a 350 ceiling (86%) pass; with the ceiling at 500 they fail, and the
    HTTP floor (2,000 req/s) is no reason alone: the verdict gives what pipeline and HTTP stack
    paid in turn allow (1 / (1/500 + 1/2000) = 400 req/s, 80%) and points at the profile."""
    result = _result()
    result["servers"][0]["http_floor"] = {"connections": 64, "rps": 2000.0, "p50_ms": 5.0, "p99_ms": 9.0}
    result["ceilings"]["workloads"]["sentiment-review"]["pipeline"] = 500.0
    review = {t["target"]: t for t in report.targets(result)}[
        "sentiment-review, 64 connections: >= 80% of the all-core pipeline ceiling"
    ]
    assert review["passed"] is False
    assert "60% (300 of 500 items/s)" in review["measured"]
    assert "paid in turn allow 400 req/s (80%)" in review["measured"]
    assert "py-spy profile" in review["measured"]
