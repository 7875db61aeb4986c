"""The end of a training run: the re-run guard, the bundle, the exported == eager check, and the
README section (every figure from this run's own evaluation)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from app.forecast import preprocess
from app.forecast.conformal import IntervalTable
from training import bundle as bundle_io
from training.bundle import shipped_metric
from training.forecast.evaluate import ordered_groups
from training.forecast.export import TASK, check_export, export

Table = dict[str, dict[str, float]]
PUBLISHED = (
    "Published M3 average sMAPE on the same test horizons (averaged over every forecast step): "
    "Theta 13.01, ForecastPro 13.19 (Makridakis & Hibon 2000), N-BEATS 12.37 (Oreshkin et al. 2020)."
)


def _f(x: float | None, digits: int = 2) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def model_order(tables: dict[str, Table], chosen: str) -> list[str]:
    baselines = ["Naive", "SeasonalNaive", "Naive2", "AutoETS", "Theta", "Theta (numpy)"]
    ours = [chosen] + [n for n in tables if n not in baselines and n != chosen]
    return ours + [b for b in baselines if b in tables]


def _label(name: str, chosen: str) -> str:
    if name == chosen:
        return f"**{name}** (shipped)"
    if name == "Theta":
        return "Theta (statsforecast)"
    return name


def markdown(summary: dict[str, Any]) -> str:
    tables: dict[str, Table] = summary["tables"]
    chosen: str = summary["chosen"]
    names = model_order(tables, chosen)
    lines: list[str] = []

    def get(name: str, group: str, key: str) -> float | None:
        return tables[name].get(group, {}).get(key)

    lines += [
        "**M3** (3,003 series; sMAPE %, mean over series per period; overall also averaged over every "
        "forecast step, the literature's convention)",
        "",
        "| model | yearly | quarterly | monthly | other | overall (steps) | overall (series) | MASE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        cells = [_f(get(n, f"M3 {p}", "smape")) for p in ("yearly", "quarterly", "monthly", "other")]
        cells += [_f(get(n, "M3", "smape_points")), _f(get(n, "M3", "smape")), _f(get(n, "M3", "mase"), 3)]
        lines.append(f"| {_label(n, chosen)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**Tourism** (1,311 series; MAPE % and MASE, mean over series)",
        "",
        "| model | MAPE yearly | quarterly | monthly | overall "
        "| MASE yearly | quarterly | monthly | overall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        periods = ("yearly", "quarterly", "monthly")
        cells = [_f(get(n, f"Tourism {p}", "mape")) for p in periods] + [_f(get(n, "Tourism", "mape"))]
        cells += [_f(get(n, f"Tourism {p}", "mase"), 3) for p in periods] + [_f(get(n, "Tourism", "mase"), 3)]
        lines.append(f"| {_label(n, chosen)} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "**M4** hourly (414 series, h = 48) and weekly (359, h = 13): sMAPE %, MASE, OWA relative to Naive2",
        "",
        "| model | hourly sMAPE | MASE | OWA | weekly sMAPE | MASE | OWA |",
        "|---|---|---|---|---|---|---|",
    ]
    for n in names:
        cells = []
        for p in ("hourly", "weekly"):
            g = f"M4 {p}"
            cells += [_f(get(n, g, "smape")), _f(get(n, g, "mase"), 3), _f(get(n, g, "owa"), 3)]
        lines.append(f"| {_label(n, chosen)} | " + " | ".join(cells) + " |")
    cover: Table = summary["coverage"]
    ets: Table = summary.get("baseline_intervals") or {}
    lines += [
        "",
        "**Prediction intervals** of the shipped model on the test splits (conformal, calibrated on the "
        "validation split); MSIS is M4's scaled interval score of the 95% interval (lower is better), "
        "beside AutoETS's own 95% interval",
        "",
        "| data | cover 95% | cover 80% | cover 50% | MSIS | AutoETS cover 95% | AutoETS MSIS |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in ordered_groups(list(cover)):
        c = cover[g]
        e = ets.get(g, {})
        cov_e = e.get("coverage_95")
        lines.append(
            f"| {g} | {100 * c['coverage_95']:.1f} | {100 * c['coverage_80']:.1f} "
            f"| {100 * c['coverage_50']:.1f} "
            f"| {c['msis']:.2f} | {'' if cov_e is None else f'{100 * cov_e:.1f}'} | {_f(e.get('msis'))} |"
        )
    val = summary["val_scores"]["by_option"]
    lines += [
        "",
        "Options measured in this run (validation score: mean over the nine dataset/period groups of the "
        "OWA-style ratio to Naive2 on the last h values of each `train`; the shipped option is the "
        "lowest): "
        + "; ".join(f"{k} {v:.4f}" for k, v in val.items())
        + f". Theta weights by season length: {summary['theta_weights']}.",
        "",
        PUBLISHED,
        "",
        f"Run: {summary['args_brief']}; training {summary['train_seconds'] / 60:.1f} min, whole run "
        f"{summary['total_seconds'] / 60:.1f} min (baselines in a parallel process: "
        + ", ".join(f"{k} {v / 60:.1f} min" for k, v in summary["baseline_seconds"].items())
        + ").",
    ]
    return "\n".join(lines)


def ship(
    args: argparse.Namespace,
    net: torch.nn.Module,
    intervals: IntervalTable,
    theta_weights: dict[str, float],
    summary: dict[str, Any],
    t0: float,
    check_batch: Sequence[preprocess.Prepared],
) -> None:
    model_dir = args.model_dir or bundle_io.DEFAULT_MODEL_DIR
    score = float(summary["val_scores"]["by_option"][summary["chosen"]])
    previous = shipped_metric(TASK, "validation", "score", model_dir=model_dir)
    if previous is not None and score >= previous and not args.force:
        print(
            f"not shipping: validation score {score:.4f} does not improve on the shipped "
            f"{previous:.4f} (--force)"
        )
        return
    tables: dict[str, Table] = summary["tables"]
    chosen = summary["chosen"]
    headline = tables[chosen]["M3"]["smape_points"]
    members = list(net.members) if hasattr(net, "members") else [net]
    first = members[0]
    path = export(
        net,
        max_window=args.max_window,
        theta_weights=theta_weights,
        intervals=intervals,
        version=args.version,
        model_dir=model_dir,
        architecture={
            "name": "seasonal global LSTM forecaster (ES-RNN-style preprocessing) + Theta combination",
            "summary": f"{len(members)}x LSTM({first.hidden}) + MLP, deseasonalised log window of "
            f"{args.max_window}, direct {first.horizon_max}-step; + Theta, conformal intervals",
            **first.config(),
            "members": len(members),
            "input_features": [
                "z (normalised deseasonalised value)",
                "its first difference",
                "real-value flag",
            ]
            + [f"static: season class {c}" for c in (*preprocess.SEASON_CLASSES, "other")]
            + ["static: season used", "static: log path"],
            "strategy": "direct multi-output (all horizons at once)",
            "parameters": sum(p.numel() for p in net.parameters()),
            "shipped_option": chosen,
        },
        headline={"metric": "M3 sMAPE", "value": round(headline, 3), "split": "M3 test (3,003 series)"},
        metrics={
            "test": tables,
            "intervals_test": summary["coverage"],
            "intervals_validation": summary["coverage_val"],
            "autoets_intervals_test": summary["baseline_intervals"],
            "validation": {
                "score": round(score, 5),
                **summary["val_scores"],
                "by_step": summary["val_history"],
            },
        },
        data=summary["data"],
        training={
            "steps": args.steps,
            "members": args.members,
            "batch_size": args.batch_size,
            "optimizer": "Adam, linear warm-up then cosine decay to 5%, grad-norm clip 1.0",
            "lr": args.lr,
            "loss": "mean absolute error in normalised units, per window over its valid steps",
            "seed": args.seed,
            "threads": args.threads,
            "train_seconds": summary["train_seconds"],
            "baseline_seconds": summary["baseline_seconds"],
            "total_seconds": round(time.time() - t0, 1),
            "splits": "competition `train` minus its last h values: training windows; those h values: "
            "validation (selection, Theta weights, interval calibration); `test`: scored only",
        },
        notes="Figures: means over series unless marked; OWA relative to this run's Naive2.",
    )
    values, lengths, static = preprocess.pad(
        [p.z for p in check_batch], [p.static for p in check_batch], args.max_window
    )
    diff = check_export(net, path, values, lengths, static)
    print(f"wrote {path}; exported vs eager max abs difference {diff:.2e} (z units)", flush=True)
    if diff > 1e-4:
        raise SystemExit(f"exported model disagrees with eager by {diff:.2e}")
    section = markdown(summary)
    if args.no_readme or model_dir.resolve() != bundle_io.DEFAULT_MODEL_DIR.resolve():
        print("README not updated (--no-readme, or --model-dir is not the repository's models/)")
    else:
        try:
            bundle_io.update_readme((TASK, section), model_dir)
        except (OSError, ValueError) as exc:
            print(f"warning: README not updated ({exc}); re-run once the README has its markers")
    print(section)
