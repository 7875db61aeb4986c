"""Scoring on the competition splits: the network through the served pipeline, the baselines, the
per-dataset/period tables, and the conformal interval calibration."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from app.forecast import preprocess as pipeline
from app.forecast import seasonal
from app.forecast.conformal import IntervalTable, interval_scale
from training.forecast import metrics
from training.forecast.competitions import CompSeries

DATASET_ORDER = ("M3", "Tourism", "M4")
PERIOD_ORDER = ("yearly", "quarterly", "monthly", "other", "weekly", "hourly")


def histories(series: Sequence[CompSeries], split: str) -> list[np.ndarray]:
    return [s.train if split == "test" else s.fit_part for s in series]


def targets(series: Sequence[CompSeries], split: str) -> list[np.ndarray]:
    return [s.test if split == "test" else s.val_target for s in series]


@torch.no_grad()
def network_outputs(
    model: torch.nn.Module,
    prepared: Sequence[pipeline.Prepared],
    width: int,
    device: str = "cpu",
    batch: int = 1024,
) -> np.ndarray:
    """[n, horizon_max] z-unit outputs, in batches of similar lengths."""
    model.eval()
    out = np.zeros((len(prepared), model.horizon_max), np.float64)  # type: ignore[arg-type]
    order = np.argsort([len(p.z) for p in prepared])
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        values, lengths, static = pipeline.pad(
            [prepared[i].z for i in idx], [prepared[i].static for i in idx], width
        )
        res = model(
            torch.from_numpy(values).to(device),
            torch.from_numpy(lengths),
            torch.from_numpy(static).to(device),
        )
        out[idx] = res.float().cpu().numpy()
    return out


def prepare_all(series: Sequence[CompSeries], split: str, max_window: int) -> list[pipeline.Prepared]:
    return [
        pipeline.prepare(x, s.m, max_window) for x, s in zip(histories(series, split), series, strict=True)
    ]


def network_forecasts(
    model: torch.nn.Module,
    series: Sequence[CompSeries],
    prepared: Sequence[pipeline.Prepared],
    width: int,
    device: str = "cpu",
) -> list[np.ndarray]:
    """The network's raw-scale forecasts, each of the series' own h."""
    outs = network_outputs(model, prepared, width, device)
    return [pipeline.finish(o, p, s.h) for o, p, s in zip(outs, prepared, series, strict=True)]


def theta_forecasts(series: Sequence[CompSeries], prepared: Sequence[pipeline.Prepared]) -> list[np.ndarray]:
    """The pipeline's own classical Theta on the same deseasonalised histories."""
    return [
        p.season.restore(seasonal.theta(p.deseasonalised, s.h), p.n)
        for p, s in zip(prepared, series, strict=True)
    ]


def combine(a: Sequence[np.ndarray], b: Sequence[np.ndarray], weight_b: float) -> list[np.ndarray]:
    return [(1.0 - weight_b) * x + weight_b * y for x, y in zip(a, b, strict=True)]


def point_table(
    series: Sequence[CompSeries], split: str, fc: Sequence[np.ndarray]
) -> dict[str, dict[str, float]]:
    """Per group ("M3 monthly", ..., "M3", "Tourism", "M4", "all"): mean sMAPE, MAPE, MASE over
    series, and `smape_points`, sMAPE averaged over every forecast step (the M3 literature's
    'average sMAPE': long-horizon periods weigh more)."""
    hist, act = histories(series, split), targets(series, split)
    rows = [
        (
            s,
            metrics.smape(a, f),
            metrics.mape(a, f),
            metrics.mase(a, f, x, s.m),
        )
        for s, x, a, f in zip(series, hist, act, fc, strict=True)
    ]
    groups: dict[str, list[int]] = {}
    for i, (s, *_rest) in enumerate(rows):
        for key in (s.group, s.dataset, "all"):
            groups.setdefault(key, []).append(i)
    out: dict[str, dict[str, float]] = {}
    for key, idx in groups.items():
        w = np.array([rows[i][0].h for i in idx], np.float64)
        sm = np.array([rows[i][1] for i in idx])
        out[key] = {
            "series": float(len(idx)),
            "smape": float(sm.mean()),
            "smape_points": float((sm * w).sum() / w.sum()),
            "mape": float(np.mean([rows[i][2] for i in idx])),
            "mase": float(np.mean([rows[i][3] for i in idx])),
        }
    return out


def with_owa(table: dict[str, dict[str, float]], naive2: dict[str, dict[str, float]]) -> None:
    for key, row in table.items():
        ref = naive2.get(key)
        if ref and ref["smape"] > 0 and ref["mase"] > 0:
            row["owa"] = metrics.owa(row["smape"], row["mase"], ref["smape"], ref["mase"])


def selection_score(table: dict[str, dict[str, float]], naive2: dict[str, dict[str, float]]) -> float:
    """Mean over the nine dataset/period groups of the OWA-style ratio to Naive2 (lower is better):
    every group counts the same, whatever its size or scale."""
    keys = [k for k in table if " " in k]
    return float(
        np.mean(
            [
                metrics.owa(table[k]["smape"], table[k]["mase"], naive2[k]["smape"], naive2[k]["mase"])
                for k in keys
            ]
        )
    )


def interval_table(
    series: Sequence[CompSeries],
    split: str,
    fc: Sequence[np.ndarray],
    intervals: IntervalTable,
) -> dict[str, dict[str, float]]:
    """Coverage per level and MSIS (95%) per group, of the calibrated intervals around `fc`."""
    hist, act = histories(series, split), targets(series, split)
    per: dict[str, dict[str, list[float]]] = {}
    for s, x, a, f in zip(series, hist, act, fc, strict=True):
        bands = intervals.bands(f, s.m, interval_scale(x, s.m))
        for key in (s.group, s.dataset, "all"):
            r = per.setdefault(key, {})
            for level, (lo, hi) in bands.items():
                inside = (a >= lo) & (a <= hi)
                r.setdefault(f"coverage_{level}", []).extend(inside.astype(float).tolist())
            lo95, hi95 = bands[95]
            r.setdefault("msis", []).append(metrics.msis(a, lo95, hi95, x, s.m, 0.05))
    return {k: {name: float(np.mean(v)) for name, v in r.items()} for k, r in per.items()}


def ordered_groups(keys: Sequence[str]) -> list[str]:
    def rank(k: str) -> tuple[int, int, int]:
        parts = k.split(" ")
        d = DATASET_ORDER.index(parts[0]) if parts[0] in DATASET_ORDER else len(DATASET_ORDER)
        if len(parts) == 1:
            return (d, 1, 0) if k != "all" else (len(DATASET_ORDER) + 1, 0, 0)
        return (d, 0, PERIOD_ORDER.index(parts[1]) if parts[1] in PERIOD_ORDER else 9)

    return sorted(keys, key=rank)
