"""Train, evaluate and export the seasonal global LSTM forecaster (`python -m training.forecast --help`).

Data: the 5,087 competition series (M3, Tourism, M4 hourly and weekly) plus the real series of
`../shared/data/timeseries`. Training windows come from each competition series' `train` minus
its last h values; those last h values are the validation split (model selection, the Theta
combination weight, and the conformal interval calibration); `test` is only scored.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import multiprocessing as mp
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from app.forecast import preprocess as pipeline
from app.forecast.conformal import calibrate, interval_scale
from training.forecast import classical, metrics
from training.forecast.competitions import CompSeries, competition_provenance, load_competitions
from training.forecast.data import DEFAULT_DATA_DIR, load_all, make_splits
from training.forecast.evaluate import (
    combine,
    histories,
    interval_table,
    network_forecasts,
    point_table,
    prepare_all,
    selection_score,
    targets,
    theta_forecasts,
    with_owa,
)
from training.forecast.model import Ensemble, Forecaster
from training.forecast.ship import ship

# A training window ends after at least this many values (Tourism yearly validation histories
# have 7; the shortest accepted history is 3).
MIN_CONTEXT = 3


@dataclass(frozen=True)
class TrainSeries:
    d: np.ndarray  # deseasonalised training part, float64
    m: int
    season_used: bool
    log_path: bool
    h: int  # the horizon windows should cover in full when the series is long enough


def train_series(
    comp: Sequence[CompSeries], extra: Sequence[tuple[np.ndarray, int, int]]
) -> list[TrainSeries]:
    out = []
    for x, m, h in [(s.fit_part, s.m, s.h) for s in comp] + list(extra):
        season, d = pipeline.deseasonalise(x, m)
        out.append(TrainSeries(d, season.m, season.used, bool(np.all(d > 0)), h))
    return out


class WindowSampler:
    """Random (window, future) pairs, each series equally likely (the competitions score every
    series the same); the window end is uniform over the positions that leave the series' h
    future values (any that leave one, for series too short for that). A small share of positive
    windows is normalised on the linear path, so that path (used for series with values <= 0)
    is trained too."""

    def __init__(
        self, series: Sequence[TrainSeries], max_window: int, horizon: int, seed: int, linear_share: float
    ) -> None:
        self.series = [s for s in series if len(s.d) > MIN_CONTEXT]
        self.max_window, self.horizon = max_window, horizon
        self.linear_share = linear_share
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, ...]:
        rng = self.rng
        picks = rng.integers(0, len(self.series), size=batch)
        windows, statics = [], []
        tgt = np.zeros((batch, self.horizon), np.float32)
        mask = np.zeros((batch, self.horizon), np.float32)
        for b, i in enumerate(picks):
            s = self.series[i]
            n = len(s.d)
            last = n - s.h if n - s.h >= MIN_CONTEXT else n - 1
            end = int(rng.integers(MIN_CONTEXT, last + 1))
            log_path = s.log_path and rng.random() >= self.linear_share
            z, level, scale = pipeline.normalise(s.d[:end], self.max_window, log_path)
            fut = s.d[end : end + self.horizon]
            t = np.log(fut / level) if log_path else (fut - level) / scale
            tgt[b, : len(t)] = np.clip(t, -pipeline.Z_CLIP, pipeline.Z_CLIP)
            mask[b, : len(t)] = 1.0
            windows.append(z)
            statics.append(pipeline.static_features(s.m, s.season_used, log_path))
        values, lengths, static = pipeline.pad(windows, statics, self.max_window)
        return (
            torch.from_numpy(values),
            torch.from_numpy(lengths),
            torch.from_numpy(static),
            torch.from_numpy(tgt),
            torch.from_numpy(mask),
        )


def window_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per window over its valid steps, then over windows (a window with a
    6-step future weighs as much as one with 48)."""
    per = ((pred - target).abs() * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return per.mean()


def train_one(
    args: argparse.Namespace,
    sampler: WindowSampler,
    val: Sequence[CompSeries],
    prep_val: Sequence[pipeline.Prepared],
    naive2_val: dict[str, dict[str, float]],
    seed: int,
    device: str,
    log_prefix: str,
) -> tuple[Forecaster, list[tuple[int, float]]]:
    """Adam, warm-up + cosine decay; keeps the weights with the best validation score."""
    torch.manual_seed(seed)
    model = Forecaster(pipeline.N_STATIC, args.hidden, args.layers, args.horizon_max, args.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.steps
    warmup = max(1, min(200, steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda i: (
            min(1.0, (i + 1) / warmup)
            * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(i, steps) / steps)))
        ),
    )
    best, best_state, history = math.inf, copy.deepcopy(model.state_dict()), []
    started, running = time.time(), 0.0
    for step in range(1, steps + 1):
        model.train()
        values, lengths, static, tgt, mask = sampler.sample(args.batch_size)
        pred = model(values.to(device), lengths, static.to(device))
        loss = window_loss(pred, tgt.to(device), mask.to(device))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % args.eval_every == 0 or step == steps:
            net = network_forecasts(model, val, prep_val, args.max_window, device)
            score = selection_score(point_table(val, "val", net), naive2_val)
            history.append((step, round(score, 5)))
            if score < best:
                best, best_state = score, copy.deepcopy(model.state_dict())
            print(
                f"[{log_prefix}] step {step}/{steps} loss {running:.4f} val score {score:.4f} "
                f"(best {best:.4f}) {time.time() - started:.0f}s",
                flush=True,
            )
    model.load_state_dict(best_state)
    model.eval()
    return model, history


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.forecast",
        description="Train the seasonal global LSTM forecaster on the competition series, score it and "
        "the statistical baselines on the official test splits, export TorchScript + ONNX to "
        "models/forecast/<version>/ and refresh the README section.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of the series (with competitions/)"
    )
    p.add_argument(
        "--model-dir", type=Path, default=None, help="bundle root (default: the repository's models/)"
    )
    p.add_argument("--version", default="2.0.0")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps per ensemble member")
    p.add_argument(
        "--members", type=int, default=1, help="ensemble members (different seeds), averaged in one graph"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--max-window", type=int, default=48, help="longest history window the network reads")
    p.add_argument("--horizon-max", type=int, default=48)
    p.add_argument(
        "--linear-share", type=float, default=0.1, help="share of positive windows put on the linear path"
    )
    p.add_argument(
        "--theta-weights",
        default="0,0.25,0.4,0.5,0.6,0.75",
        help="Theta combination weights to select from on validation",
    )
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--no-real", action="store_true", help="train on the competition series only")
    p.add_argument(
        "--baselines",
        default=",".join(classical.STATSFORECAST_MODELS),
        help="statsforecast baselines ('' for none)",
    )
    p.add_argument("--jobs", type=int, default=1, help="processes for the statsforecast baselines")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the CPU is shared)")
    p.add_argument("--no-export", action="store_true", help="score only (experiments)")
    p.add_argument("--summary", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument("--dump", type=Path, default=None, help="save validation/test forecasts (.npz) here")
    p.add_argument("--force", action="store_true", help="ship even if the validation score does not improve")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite the README's forecast section")
    return p.parse_args(argv)


def real_training_series(data_dir: Path) -> list[tuple[np.ndarray, int, int]]:
    """The real series' training parts (everything before their held-out tails), as extra
    training windows; they are not scored here (the competitions are)."""
    try:
        splits = make_splits(load_all(data_dir))
    except FileNotFoundError:
        return []
    return [(sp.series.values[: sp.train_end], sp.series.m, sp.series.horizon) for sp in splits]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    comp = load_competitions(args.data_dir)
    extra = [] if args.no_real else real_training_series(args.data_dir)
    print(f"{len(comp)} competition series, {len(extra)} real series", flush=True)
    train_set = train_series(comp, extra)
    naive2_val = point_table(comp, "val", classical.numpy_baselines(comp, "val")["Naive2"])
    prep_val = prepare_all(comp, "val", args.max_window)
    prep_test = prepare_all(comp, "test", args.max_window)
    print(f"prepared in {time.time() - t0:.0f}s", flush=True)

    base_names = [b for b in args.baselines.split(",") if b]
    pending: Future[tuple[classical.Forecasts, classical.Intervals, dict[str, float]]] | None = None
    if base_names:
        # The baselines run in a worker process while the network trains (both are single-threaded).
        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        pending = pool.submit(
            classical.statsforecast_baselines,
            comp,
            "test",
            models=base_names,
            levels=[95],
            interval_models=("AutoETS",),
            n_jobs=args.jobs,
        )

    members: list[Forecaster] = []
    histories_by_member = []
    train_started = time.time()
    for k in range(args.members):
        sampler = WindowSampler(
            train_set, args.max_window, args.horizon_max, args.seed + k, args.linear_share
        )
        model, hist = train_one(
            args, sampler, comp, prep_val, naive2_val, args.seed + k, args.device, f"member {k}"
        )
        members.append(model)
        histories_by_member.append(hist)
    train_seconds = time.time() - train_started
    net: torch.nn.Module = members[0] if len(members) == 1 else Ensemble(members)
    net = net.to("cpu").eval()

    # Validation: the Theta weights, then the interval calibration of the chosen combination.
    val_net, val_theta = (
        network_forecasts(net, comp, prep_val, args.max_window),
        theta_forecasts(comp, prep_val),
    )
    grid = [float(w) for w in args.theta_weights.split(",") if w != ""]
    weights, val_scores = choose_theta_weights(comp, val_net, val_theta, naive2_val, grid)
    print(f"validation: {val_scores}; Theta weights {weights}", flush=True)
    options = {
        "LSTM": {DEFAULT_CLASS: 0.0},
        f"LSTM + Theta (w={weights[DEFAULT_CLASS]:g})": {DEFAULT_CLASS: weights[DEFAULT_CLASS]},
        "LSTM + Theta (w per season length)": weights,
    }
    option_val = {
        name: selection_score(
            point_table(comp, "val", combine_by_class(comp, val_net, val_theta, w)), naive2_val
        )
        for name, w in options.items()
    }
    chosen_name = min(option_val, key=lambda k: option_val[k])
    theta_weights = options[chosen_name]
    print(f"validation score by option: {option_val}; shipped: {chosen_name}", flush=True)
    val_fc = combine_by_class(comp, val_net, val_theta, theta_weights)
    val_hist = histories(comp, "val")
    intervals = calibrate(
        targets(comp, "val"),
        val_fc,
        [interval_scale(x, s.m) for x, s in zip(val_hist, comp, strict=True)],
        [s.m for s in comp],
    )

    # Test.
    test_net, test_theta = (
        network_forecasts(net, comp, prep_test, args.max_window),
        theta_forecasts(comp, prep_test),
    )
    candidates = {name: combine_by_class(comp, test_net, test_theta, w) for name, w in options.items()}
    test_fc = candidates[chosen_name]
    if args.dump:
        np.savez_compressed(
            args.dump,
            **{
                f"{k}_{i}": v
                for k, arrs in (("vn", val_net), ("vt", val_theta), ("tn", test_net), ("tt", test_theta))
                for i, v in enumerate(arrs)
            },
        )
    numpy_test = classical.numpy_baselines(comp, "test")
    tables: dict[str, dict[str, dict[str, float]]] = {
        name: point_table(comp, "test", fc) for name, fc in candidates.items()
    }
    tables["Naive2"] = point_table(comp, "test", numpy_test["Naive2"])
    tables["Theta (numpy)"] = point_table(comp, "test", numpy_test["Theta (numpy)"])
    baseline_seconds: dict[str, float] = {}
    ets_intervals = None
    if pending is not None:
        print("waiting for the statsforecast baselines...", flush=True)
        sf_fc, sf_iv, baseline_seconds = pending.result()
        for name, fc in sf_fc.items():
            tables[name] = point_table(comp, "test", fc)
        ets_intervals = sf_iv.get("AutoETS", {}).get(95)
    for table in tables.values():
        with_owa(table, tables["Naive2"])
    cover = interval_table(comp, "test", test_fc, intervals)
    cover_val = interval_table(comp, "val", val_fc, intervals)
    baseline_cover = ets_interval_table(comp, ets_intervals) if ets_intervals else {}

    summary = {
        "chosen": chosen_name,
        "theta_weights": theta_weights,
        "val_scores": {"by_weight": val_scores, "by_option": option_val},
        "val_history": histories_by_member,
        "tables": tables,
        "coverage": cover,
        "coverage_val": cover_val,
        "baseline_intervals": baseline_cover,
        "train_seconds": round(train_seconds, 1),
        "baseline_seconds": baseline_seconds,
        "total_seconds": round(time.time() - t0, 1),
        "args": {k: str(v) for k, v in vars(args).items()},
        "args_brief": f"hidden {args.hidden}, layers {args.layers}, window {args.max_window}, "
        f"{args.members} member(s) x {args.steps} steps of {args.batch_size}, lr {args.lr}, "
        f"seed {args.seed}, {args.threads} torch thread(s)",
        "data": {
            "competitions": competition_provenance(comp, args.data_dir),
            "real_series": f"{len(extra)} series of ../shared/data/timeseries (training windows only)",
        },
    }
    print(json.dumps({k: summary[k] for k in ("chosen", "val_scores", "train_seconds")}), flush=True)
    print_brief(tables, cover)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=1))
    if args.no_export:
        return
    ship(args, net, intervals, theta_weights, summary, t0, prep_val[::20])


DEFAULT_CLASS = "default"


def combine_by_class(
    comp: Sequence[CompSeries],
    net: Sequence[np.ndarray],
    theta: Sequence[np.ndarray],
    weights: dict[str, float],
) -> list[np.ndarray]:
    """Per series: (1 - w) * network + w * Theta, w of the series' season length (or the default)."""
    out = []
    for s, a, b in zip(comp, net, theta, strict=True):
        w = weights.get(str(s.m), weights[DEFAULT_CLASS])
        out.append((1.0 - w) * a + w * b)
    return out


def choose_theta_weights(
    comp: Sequence[CompSeries],
    net: Sequence[np.ndarray],
    theta: Sequence[np.ndarray],
    naive2_val: dict[str, dict[str, float]],
    grid: Sequence[float],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """On validation: the weight of each season length (mean Naive2-relative ratio over its
    dataset/period groups) and a default for other season lengths (the best over all groups)."""
    tables = {w: point_table(comp, "val", combine(net, theta, w)) for w in grid}
    groups_of: dict[str, set[str]] = {}
    for s in comp:
        groups_of.setdefault(str(s.m), set()).add(s.group)

    def ratio(w: float, groups: set[str]) -> float:
        t = tables[w]
        return float(
            np.mean(
                [
                    metrics.owa(t[g]["smape"], t[g]["mase"], naive2_val[g]["smape"], naive2_val[g]["mase"])
                    for g in groups
                ]
            )
        )

    scores = {c: {f"{w:g}": round(ratio(w, g), 5) for w in grid} for c, g in groups_of.items()}
    all_groups = {s.group for s in comp}
    scores[DEFAULT_CLASS] = {f"{w:g}": round(ratio(w, all_groups), 5) for w in grid}
    weights = {c: float(min(grid, key=lambda w, g=g: ratio(w, g))) for c, g in groups_of.items()}  # type: ignore[misc]
    weights[DEFAULT_CLASS] = float(min(grid, key=lambda w: ratio(w, all_groups)))
    return weights, scores


def ets_interval_table(
    comp: Sequence[CompSeries], band: tuple[list[np.ndarray], list[np.ndarray]]
) -> dict[str, dict[str, float]]:
    lo, hi = band
    per: dict[str, dict[str, list[float]]] = {}
    for i, s in enumerate(comp):
        for key in (s.group, s.dataset, "all"):
            r = per.setdefault(key, {"coverage_95": [], "msis": []})
            r["coverage_95"].extend(((s.test >= lo[i]) & (s.test <= hi[i])).astype(float).tolist())
            r["msis"].append(metrics.msis(s.test, lo[i], hi[i], s.train, s.m, 0.05))
    return {k: {n: float(np.mean(v)) for n, v in r.items()} for k, r in per.items()}


def print_brief(tables: dict[str, dict[str, dict[str, float]]], cover: dict[str, dict[str, float]]) -> None:
    keys = ["M3", "M3 monthly", "Tourism", "M4 hourly", "M4 weekly"]
    print("model | " + " | ".join(keys) + "   (M3: sMAPE points/series; Tourism: MASE; M4: OWA)")
    for name, t in tables.items():
        cells = [
            f"{t['M3']['smape_points']:.2f}/{t['M3']['smape']:.2f}",
            f"{t['M3 monthly']['smape']:.2f}",
            f"{t['Tourism']['mase']:.3f}",
            f"{t['M4 hourly'].get('owa', float('nan')):.3f}",
            f"{t['M4 weekly'].get('owa', float('nan')):.3f}",
        ]
        print(f"{name} | " + " | ".join(cells), flush=True)
    for key in ("M3", "Tourism", "M4", "all"):
        c = cover[key]
        print(
            f"coverage {key}: 95 {100 * c['coverage_95']:.1f} 80 {100 * c['coverage_80']:.1f} "
            f"50 {100 * c['coverage_50']:.1f} MSIS {c['msis']:.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
