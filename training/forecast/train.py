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
from app.forecast.conformal import IntervalTable, calibrate, interval_scale
from training.forecast import classical, custom, metrics
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

# Fewest validation series a season-length class needs for an interval table of its own (others
# use the pooled table). Every competition class has hundreds; a user's file may have one.
MIN_CLASS_SERIES = 10
# A table from fewer validation series pools its steps (conformal._pooled_step_rows): below 39
# errors a step's 95% band would be its widest error.
POOL_STEPS_BELOW = 40
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
    init: torch.nn.Module | None = None,
) -> tuple[torch.nn.Module, list[tuple[int, float]]]:
    """Adam, warm-up + cosine decay; keeps the weights with the best validation score. `init`:
    fine-tune a copy of these weights instead of starting from random ones."""
    torch.manual_seed(seed)
    model: torch.nn.Module = (
        Forecaster(pipeline.N_STATIC, args.hidden, args.layers, args.horizon_max, args.dropout)
        if init is None
        else copy.deepcopy(init)
    ).to(device)
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


# What differs between the two presets of this one command: the competition run (no data
# arguments) trains the shipped model from random weights; a run on a user's --series file
# fine-tunes that shipped model briefly and compares it with the statistical baselines.
PRESETS: dict[str, dict[str, object]] = {
    "competitions": {
        "version": "2.0.0",
        "steps": 3000,
        "lr": 2e-3,
        "eval_every": 500,
        "theta_weights": "0,0.25,0.4,0.5,0.6,0.75",
        "baselines": ",".join(classical.STATSFORECAST_MODELS),
    },
    "series": {
        "version": None,  # 1.0.0 for a new name, else the next minor version
        "steps": 300,
        "lr": 5e-4,
        "eval_every": 25,
        # 1: the pipeline's classical Theta alone, which the service can serve too.
        "theta_weights": "0,0.25,0.4,0.5,0.6,0.75,1",
        "baselines": ",".join(custom.SERIES_BASELINES),
    },
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.forecast",
        description="Without --series: train the seasonal global LSTM forecaster on the competition "
        "series, score it and the statistical baselines on the official test splits, export "
        "TorchScript + ONNX to models/forecast/<version>/ and refresh the README section. With "
        "--series FILE --name NAME: compare the shipped model as it is, the shipped model "
        "fine-tuned on the file's series and statsforecast baselines on each series' validation "
        "horizon, ship the best servable option to MODEL_DIR/NAME/<version>/ with its intervals "
        "calibrated on that validation, and write REPORT.md beside it.",
    )
    p.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of the series (with competitions/)"
    )
    p.add_argument(
        "--model-dir", type=Path, default=None, help="bundle root (default: the repository's models/)"
    )
    own = p.add_argument_group("your own data (long format, as statsforecast takes it)")
    own.add_argument("--series", type=Path, default=None, help="CSV, TSV, JSON Lines or Parquet file")
    own.add_argument("--name", default=None, help="model name: the bundle goes to MODEL_DIR/NAME/<version>/")
    own.add_argument("--id-column", default="unique_id")
    own.add_argument("--time-column", default="ds", help="ISO 8601 dates or date-times")
    own.add_argument("--value-column", default="y")
    own.add_argument("--format", default=None, help="csv, tsv, jsonl or parquet (default: from the suffix)")
    own.add_argument(
        "--horizon",
        type=int,
        default=None,
        help="steps to forecast; the last horizon of each series is the test, the one before it the "
        "validation (default: by frequency, the M4 horizons: monthly 18, weekly 13, daily 14, ...)",
    )
    own.add_argument(
        "--frequency", default=None, help="pandas offset alias of every series (default: inferred per series)"
    )
    own.add_argument(
        "--base",
        type=Path,
        default=None,
        help="bundle folder to start from (default: the newest of the repository's models/forecast)",
    )
    own.add_argument(
        "--readme",
        action="store_true",
        help="write the run's option table into the README's forecast-userdata section",
    )
    p.add_argument("--version", default=None, help="bundle version (competitions: 2.0.0)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="optimiser steps per ensemble member (competitions: 3000, --series: 300 of fine-tuning)",
    )
    p.add_argument(
        "--members", type=int, default=1, help="ensemble members (different seeds), averaged in one graph"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=None, help="competitions: 2e-3; --series: 5e-4")
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
        default=None,
        help="Theta combination weights to select from on validation",
    )
    p.add_argument("--eval-every", type=int, default=None)
    p.add_argument("--no-real", action="store_true", help="train on the competition series only")
    p.add_argument("--baselines", default=None, help="statsforecast baselines ('' for none)")
    p.add_argument("--jobs", type=int, default=1, help="processes for the statsforecast baselines")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the CPU is shared)")
    p.add_argument("--no-export", action="store_true", help="score only (experiments)")
    p.add_argument("--summary", type=Path, default=None, help="write the figures as JSON here")
    p.add_argument("--dump", type=Path, default=None, help="save validation/test forecasts (.npz) here")
    p.add_argument(
        "--force",
        action="store_true",
        help="ship even if the validation score does not beat the current bundle",
    )
    p.add_argument("--no-readme", action="store_true", help="do not rewrite the README's forecast section")
    args = p.parse_args(argv)
    args.preset = "competitions" if args.series is None else "series"
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.series is not None and not args.name:
        p.error("--series needs --name (the folder the bundle goes to under MODEL_DIR)")
    if args.series is None and args.name:
        p.error("--name needs --series (the competition model is always named forecast)")
    return args


def real_training_series(data_dir: Path) -> list[tuple[np.ndarray, int, int]]:
    """The real series' training parts (everything before their held-out tails), as extra
    training windows; they are not scored here (the competitions are)."""
    try:
        splits = make_splits(load_all(data_dir))
    except FileNotFoundError:
        return []
    return [(sp.series.values[: sp.train_end], sp.series.m, sp.series.horizon) for sp in splits]


@dataclass(frozen=True)
class Option:
    """A servable forecaster: one of the run's networks combined with Theta by these weights."""

    name: str
    net: str
    weights: dict[str, float]


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    user: custom.UserRun | None = None
    if args.preset == "series":
        # Every check of the file, the base bundle and the name runs before any training.
        user = custom.prepare_run(args)
        comp = user.comp
        extra: list[tuple[np.ndarray, int, int]] = []
        print(f"{len(comp)} series from {args.series}", flush=True)
    else:
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
    pending_val: Future[tuple[classical.Forecasts, classical.Intervals, dict[str, float]]] | None = None
    if base_names:
        # The baselines run in a worker process while the network trains (both are single-threaded).
        pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn"))
        if user is not None:
            # A user's options include the baselines, so they are scored on validation too (the
            # competitions' 5,087 series would take AutoETS another half hour).
            pending_val = pool.submit(
                classical.statsforecast_baselines, comp, "val", models=base_names, n_jobs=args.jobs
            )
        pending = pool.submit(
            classical.statsforecast_baselines,
            comp,
            "test",
            models=base_names,
            levels=[95],
            interval_models=("AutoETS",),
            n_jobs=args.jobs,
        )

    histories_by_member = []
    train_started = time.time()
    nets: dict[str, torch.nn.Module] = {}
    if user is None:
        members = []
        for k in range(args.members):
            sampler = WindowSampler(
                train_set, args.max_window, args.horizon_max, args.seed + k, args.linear_share
            )
            model, hist = train_one(
                args, sampler, comp, prep_val, naive2_val, args.seed + k, args.device, f"member {k}"
            )
            members.append(model)
            histories_by_member.append(hist)
        net: torch.nn.Module = members[0] if len(members) == 1 else Ensemble(members)
        nets["LSTM"] = net.to("cpu").eval()
    else:
        nets[custom.SHIPPED] = user.base.module
        if args.steps > 0:
            sampler = WindowSampler(
                train_set, args.max_window, args.horizon_max, args.seed, args.linear_share
            )
            tuned, hist = train_one(
                args,
                sampler,
                comp,
                prep_val,
                naive2_val,
                args.seed,
                args.device,
                "fine-tune",
                user.base.module,
            )
            nets[custom.TUNED] = tuned.to("cpu").eval()
            histories_by_member.append(hist)
        if user.current is not None:
            nets[custom.CURRENT] = user.current.module
    train_seconds = time.time() - train_started

    # Validation: the Theta weights of each network, then the option with the best score, and the
    # interval calibration of the chosen option.
    grid = [float(w) for w in args.theta_weights.split(",") if w != ""]
    val_theta = theta_forecasts(comp, prep_val)
    test_theta = theta_forecasts(comp, prep_test)
    val_net: dict[str, list[np.ndarray]] = {}
    test_net: dict[str, list[np.ndarray]] = {}
    val_scores: dict[str, dict[str, dict[str, float]]] = {}
    chosen_weights: dict[str, dict[str, float]] = {}
    for key, module in nets.items():
        width = user.width(key) if user is not None else args.max_window
        pv = prep_val if width == args.max_window else prepare_all(comp, "val", width)
        pt = prep_test if width == args.max_window else prepare_all(comp, "test", width)
        val_net[key] = network_forecasts(module, comp, pv, width)
        test_net[key] = network_forecasts(module, comp, pt, width)
        chosen_weights[key], val_scores[key] = choose_theta_weights(
            comp, val_net[key], val_theta, naive2_val, grid
        )
    if user is None:
        weights = chosen_weights["LSTM"]
        print(f"validation: {val_scores['LSTM']}; Theta weights {weights}", flush=True)
        options = [
            Option("LSTM", "LSTM", {DEFAULT_CLASS: 0.0}),
            Option(
                f"LSTM + Theta (w={weights[DEFAULT_CLASS]:g})",
                "LSTM",
                {DEFAULT_CLASS: weights[DEFAULT_CLASS]},
            ),
            Option("LSTM + Theta (w per season length)", "LSTM", weights),
        ]
    else:
        options = [Option(*o) for o in user.options(chosen_weights)]
    val_tables = {
        o.name: point_table(comp, "val", combine_by_class(comp, val_net[o.net], val_theta, o.weights))
        for o in options
    }
    option_val = {name: selection_score(t, naive2_val) for name, t in val_tables.items()}
    by_name = {o.name: o for o in options}
    chosen_name = min(option_val, key=lambda k: option_val[k])
    if user is not None:
        chosen_name = user.pick(option_val, args.force)
    chosen = by_name[chosen_name]
    theta_weights = chosen.weights
    print(f"validation score by option: {option_val}; chosen: {chosen_name}", flush=True)
    val_hist = histories(comp, "val")
    val_scales = [interval_scale(x, s.m) for x, s in zip(val_hist, comp, strict=True)]

    def calibrated(o: Option) -> IntervalTable:
        fc = combine_by_class(comp, val_net[o.net], val_theta, o.weights)
        return calibrate(
            targets(comp, "val"),
            fc,
            val_scales,
            [s.m for s in comp],
            min_series=MIN_CLASS_SERIES,
            pool_steps_below=POOL_STEPS_BELOW,
        )

    val_fc = combine_by_class(comp, val_net[chosen.net], val_theta, theta_weights)
    intervals = calibrated(chosen)

    # Test.
    candidates = {o.name: combine_by_class(comp, test_net[o.net], test_theta, o.weights) for o in options}
    test_fc = candidates[chosen_name]
    if args.dump:
        np.savez_compressed(
            args.dump,
            **{
                f"{k}_{i}": v
                for k, arrs in (
                    ("vn", val_net[chosen.net]),
                    ("vt", val_theta),
                    ("tn", test_net[chosen.net]),
                    ("tt", test_theta),
                )
                for i, v in enumerate(arrs)
            },
        )
    numpy_test = classical.numpy_baselines(comp, "test")
    tables: dict[str, dict[str, dict[str, float]]] = {
        name: point_table(comp, "test", fc) for name, fc in candidates.items()
    }
    tables["Naive2"] = point_table(comp, "test", numpy_test["Naive2"])
    if user is None:
        tables["Theta (numpy)"] = point_table(comp, "test", numpy_test["Theta (numpy)"])
    baseline_seconds: dict[str, float] = {}
    ets_intervals = None
    baseline_val: dict[str, float] = {}
    if pending is not None:
        print("waiting for the statsforecast baselines...", flush=True)
        sf_fc, sf_iv, baseline_seconds = pending.result()
        for name, fc in sf_fc.items():
            tables[name] = point_table(comp, "test", fc)
        ets_intervals = sf_iv.get("AutoETS", {}).get(95)
    if pending_val is not None:
        sf_val, _, seconds_val = pending_val.result()
        for name, fc in sf_val.items():
            val_tables[name] = point_table(comp, "val", fc)
            baseline_val[name] = selection_score(val_tables[name], naive2_val)
            baseline_seconds[name] = baseline_seconds.get(name, 0.0) + seconds_val.get(name, 0.0)
    for table in tables.values():
        with_owa(table, tables["Naive2"])
    cover = interval_table(comp, "test", test_fc, intervals)
    cover_val = interval_table(comp, "val", val_fc, intervals)
    baseline_cover = ets_interval_table(comp, ets_intervals) if ets_intervals else {}

    summary = {
        "chosen": chosen_name,
        "theta_weights": theta_weights,
        "val_scores": {
            "by_weight": val_scores["LSTM"] if user is None else val_scores,
            "by_option": option_val,
        },
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
    }
    if user is not None:
        summary["baseline_validation"] = baseline_val
        summary["coverage_by_option"] = {
            o.name: interval_table(comp, "test", candidates[o.name], calibrated(o))["all"] for o in options
        }
        summary["data"] = user.data
        summary["val_tables"] = {name: t["all"] for name, t in val_tables.items()}
        counts = {c: sum(str(s.m) == c for s in comp) if c != "all" else len(comp) for c in intervals.table}
        summary["calibration"] = {
            "series_per_table": counts,
            "steps_pooled": [c for c, n in counts.items() if n < POOL_STEPS_BELOW],
        }
        print(json.dumps({k: summary[k] for k in ("chosen", "val_scores", "train_seconds")}), flush=True)
        if args.summary:
            args.summary.write_text(json.dumps(summary, indent=1))
        custom.finish(args, user, chosen.net, nets[chosen.net], intervals, summary, t0)
        return
    summary["data"] = {
        "competitions": competition_provenance(comp, args.data_dir),
        "real_series": f"{len(extra)} series of ../shared/data/timeseries (training windows only)",
    }
    print(json.dumps({k: summary[k] for k in ("chosen", "val_scores", "train_seconds")}), flush=True)
    print_brief(tables, cover)
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=1))
    if args.no_export:
        return
    ship(args, nets[chosen.net], intervals, theta_weights, summary, t0, prep_val[::20])


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
