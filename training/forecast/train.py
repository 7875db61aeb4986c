"""Train, evaluate and export the global LSTM forecaster (`python -m training.forecast --help`)."""

from __future__ import annotations

import argparse
import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from training import bundle as bundle_io
from training.bundle import shipped_metric
from training.forecast.data import DEFAULT_DATA_DIR, Split, load_all, make_splits, provenance
from training.forecast.evaluate import (
    cases,
    direct_quantiles,
    full_table,
    markdown_table,
    mean_mase,
    model_forecasts,
    recursive_quantiles,
)
from training.forecast.export import TASK, export
from training.forecast.model import DEFAULT_QUANTILES, Forecaster, pad_batch, pinball_loss

TARGET_CLIP = 100.0  # standardised units; one wild target must not dominate a batch


class WindowSampler:
    """Random (context, target) windows from the training part of every series.

    All windows of a batch share one context length, so the packed LSTM runs at full speed; the
    length is the maximum window half of the time and log-uniform below it otherwise, so the model
    learns from short histories too. Series are drawn with weight sqrt(#windows): long series do
    not drown the short ones, short ones are not repeated to death.
    """

    def __init__(
        self, splits: Sequence[Split], min_window: int, max_window: int, horizon: int, seed: int
    ) -> None:
        self.train = [sp.series.values[: sp.train_end].astype(np.float32) for sp in splits]
        self.min_window, self.max_window, self.horizon = min_window, max_window, horizon
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self.rng
        if rng.random() < 0.5:
            length = self.max_window
        else:
            length = round(math.exp(rng.uniform(math.log(self.min_window), math.log(self.max_window))))
        ok = [i for i, v in enumerate(self.train) if len(v) - 1 >= length]
        if not ok:
            length = min(len(v) for v in self.train) - 1
            ok = list(range(len(self.train)))
        weights = np.sqrt([len(self.train[i]) - length for i in ok])
        picks = rng.choice(ok, size=batch, p=weights / weights.sum())
        ctx = np.zeros((batch, length), np.float32)
        tgt = np.zeros((batch, self.horizon), np.float32)
        mask = np.zeros((batch, self.horizon), np.float32)
        for b, i in enumerate(picks):
            v = self.train[i]
            end = int(rng.integers(length, len(v)))  # at least one target value stays in training
            ctx[b] = v[end - length : end]
            t = v[end : end + self.horizon]
            tgt[b, : len(t)] = t
            mask[b, : len(t)] = 1.0
        lengths = torch.full((batch,), length, dtype=torch.int64)
        return torch.from_numpy(ctx), lengths, torch.from_numpy(tgt), torch.from_numpy(mask)


def train_model(
    model: Forecaster,
    sampler: WindowSampler,
    val_cases: list,  # type: ignore[type-arg]
    *,
    steps: int,
    batch: int,
    lr: float,
    eval_every: int,
    recursive: bool,
    max_window: int,
    log_prefix: str,
) -> tuple[Forecaster, list[tuple[int, float]]]:
    """Adam with cosine decay; keeps the weights with the best validation mean MASE."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    warmup = max(1, min(100, steps // 20))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1.0 + math.cos(math.pi * min(i, steps) / steps))
    )
    best, best_state, history = math.inf, copy.deepcopy(model.state_dict()), []
    started = time.time()
    running = 0.0
    for step in range(1, steps + 1):
        model.train()
        ctx, lengths, tgt, mask = sampler.sample(batch)
        zq, mean, scale = model.forward_normalized(ctx, lengths)
        ztgt = ((tgt - mean) / scale).clamp(-TARGET_CLIP, TARGET_CLIP)
        loss = pinball_loss(zq, ztgt, mask, model.quantiles)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
        if step % eval_every == 0 or step == steps:
            model.eval()
            fn = (recursive_quantiles if recursive else direct_quantiles)(model, max_window)
            med = model.quantiles.index(0.5)
            val = mean_mase(val_cases, [q[:, med] for q in model_forecasts(fn, val_cases, model.horizon_max)])
            history.append((step, val))
            if val < best:
                best, best_state = val, copy.deepcopy(model.state_dict())
            print(
                f"[{log_prefix}] step {step}/{steps} loss {running:.4f} val mean MASE {val:.4f} "
                f"(best {best:.4f}) {time.time() - started:.0f}s",
                flush=True,
            )
    model.load_state_dict(best_state)
    model.eval()
    return model, history


def check_export(model: Forecaster, path: Path, histories: list[np.ndarray], max_window: int) -> float:
    """Largest |exported - eager| over a padded batch of real windows, for both backends."""
    values, lengths = pad_batch([h[-max_window:] for h in histories])
    with torch.no_grad():
        eager = model(values, lengths).numpy()
    scripted = torch.jit.load(str(path / "model.pt"))
    with torch.no_grad():
        ts = scripted(values, lengths).numpy()
    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = sess.run(["quantiles"], {"values": values.numpy(), "lengths": lengths.numpy()})
    # Relative to each window's scale: series range from 0.07 (MSFT 1986) to 50,000 MW.
    scale = np.abs(eager).max(axis=(1, 2), keepdims=True) + 1.0
    return float(max(np.max(np.abs(ts - eager) / scale), np.max(np.abs(onnx_out - eager) / scale)))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m training.forecast",
        description="Train the global LSTM forecaster on the real series, evaluate it against naive, "
        "seasonal naive and ETS on the held-out tail of every series, export TorchScript + ONNX "
        "to models/forecast/<version>/ and refresh the README section.",
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="folder of the series CSVs")
    p.add_argument("--model-dir", type=Path, default=bundle_io.DEFAULT_MODEL_DIR, help="bundle root")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps of the shipped model")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument(
        "--skip-lags", type=int, default=0, help="last values fed straight to the head (0: LSTM state only)"
    )
    p.add_argument("--min-window", type=int, default=12, help="shortest history the model accepts")
    p.add_argument("--max-window", type=int, default=192, help="longest history the model reads")
    p.add_argument("--horizon-max", type=int, default=48)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument(
        "--compare-steps",
        type=int,
        default=750,
        help="train a one-step recursive model for this many steps and compare it with the direct "
        "model at the same step count (0 skips the comparison)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the CPU is shared)")
    p.add_argument("--force", action="store_true", help="ship even if the validation metric does not improve")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite the README's forecast section")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()
    series = load_all(args.data_dir)
    splits = make_splits(series)
    val_cases, test_cases = cases(splits, "val"), cases(splits, "test")
    print(f"{len(series)} series, {len(val_cases)} validation and {len(test_cases)} test origins", flush=True)
    levels = list(DEFAULT_QUANTILES)

    comparison: dict[str, object] = {}
    if args.compare_steps > 0:
        torch.manual_seed(args.seed)
        rec = Forecaster(args.hidden, args.layers, horizon_max=1, quantiles=levels, skip_lags=args.skip_lags)
        sampler = WindowSampler(splits, args.min_window, args.max_window, 1, args.seed)
        _, rec_hist = train_model(
            rec,
            sampler,
            val_cases,
            steps=args.compare_steps,
            batch=args.batch_size,
            lr=args.lr,
            eval_every=args.eval_every,
            recursive=True,
            max_window=args.max_window,
            log_prefix="recursive",
        )
        comparison["recursive_val_mase_by_step"] = rec_hist

    torch.manual_seed(args.seed)
    model = Forecaster(
        args.hidden, args.layers, horizon_max=args.horizon_max, quantiles=levels, skip_lags=args.skip_lags
    )
    sampler = WindowSampler(splits, args.min_window, args.max_window, args.horizon_max, args.seed)
    train_started = time.time()
    model, hist = train_model(
        model,
        sampler,
        val_cases,
        steps=args.steps,
        batch=args.batch_size,
        lr=args.lr,
        eval_every=args.eval_every,
        recursive=False,
        max_window=args.max_window,
        log_prefix="direct",
    )
    train_seconds = time.time() - train_started
    val_best = min(v for _, v in hist)
    if comparison:
        comparison["direct_val_mase_by_step"] = hist
        rec_best = min(v for _, v in comparison["recursive_val_mase_by_step"])  # type: ignore[attr-defined]
        direct_at = min(v for s, v in hist if s <= args.compare_steps)
        comparison["summary"] = (
            f"after {args.compare_steps} steps: direct val mean MASE {direct_at:.4f}, "
            f"recursive {rec_best:.4f}; shipped: direct"
        )
        print(comparison["summary"], flush=True)

    print("evaluating on the held-out test tail (baselines incl. ETS)...", flush=True)
    fn = direct_quantiles(model, args.max_window)
    test_q = model_forecasts(fn, test_cases, args.horizon_max)
    table = full_table(test_cases, test_q, levels)
    md_table = markdown_table(table, levels)
    print(md_table, flush=True)
    mean = table["mean"]
    assert isinstance(mean, dict)
    headline = float(mean["mase_lstm"])

    previous = shipped_metric(TASK, "validation", "mean_mase_lstm", model_dir=args.model_dir)
    if previous is not None and val_best >= previous and not args.force:
        print(
            f"not shipping: validation mean MASE {val_best:.4f} does not improve on the shipped "
            f"{previous:.4f} (use --force)"
        )
        return

    path = export(
        model,
        min_window=args.min_window,
        max_window=args.max_window,
        version=args.version,
        model_dir=args.model_dir,
        headline={
            "metric": "mean MASE",
            "value": round(headline, 4),
            "split": "held-out tail of each series",
        },
        metrics={
            "held_out_test": table,
            "validation": {"mean_mase_lstm": round(val_best, 4), "by_step": hist},
            "strategy_comparison": comparison,
        },
        data=provenance(series, args.data_dir),
        training={
            "steps": args.steps,
            "batch_size": args.batch_size,
            "optimizer": "Adam, linear warm-up then cosine decay, grad-norm clip 1.0",
            "lr": args.lr,
            "loss": "pinball (quantile) loss on window-standardised targets",
            "seed": args.seed,
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.time() - t0, 1),
            "threads": args.threads,
            "splits": "per series: test = last k*H values (k<=3 rolling origins, H the series horizon), "
            "validation = the k*H before; training windows end before validation",
        },
        notes="Held-out figures are means over series of means over each series' rolling origins.",
    )
    diff = check_export(model, path, [c.history for c in test_cases], args.max_window)
    print(f"wrote {path}; exported vs eager max relative difference {diff:.2e}", flush=True)
    if diff > 1e-5:
        raise SystemExit(f"exported model disagrees with eager by {diff:.2e}")

    section = (
        f"Held-out tail of each series (rolling origins, never seen in training); MASE scaled by the "
        f"in-sample seasonal-naive error. Mean MASE {headline:.3f}; LSTM beats ETS on "
        f"{table['series_beating_ets']} series and seasonal naive on "
        f"{table['series_beating_seasonal_naive']}. "
        f"{comparison.get('summary', '')}\n\n{md_table}\n"
    )
    if args.no_readme or args.model_dir.resolve() != bundle_io.DEFAULT_MODEL_DIR.resolve():
        # The README describes the repository's shipped bundles, not scratch runs elsewhere.
        print("README not updated (--no-readme, or --model-dir is not the repository's models/)")
    else:
        try:
            bundle_io.update_readme((TASK, section), args.model_dir)
        except (OSError, ValueError) as exc:
            print(f"warning: README not updated ({exc}); re-run once the README has its markers")
    print(f"done in {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
