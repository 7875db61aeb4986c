"""`python -m training.forecast --series FILE --name NAME`: the pieces of the training command
that only a run on a user's own series needs. The run itself is `train.main`, the same code the
competition model is trained with; this module loads the bundle it starts from, names the options
it compares, guards the bundle it might replace, and writes the bundle, REPORT.md and the README
section.

Options, all scored on each series' validation horizon (the one before its last):

- the base bundle (the shipped forecaster) as it is: its network and its Theta weights;
- the same network with Theta weights chosen on this validation;
- the network fine-tuned on these series' training parts, with either set of weights;
- the pipeline's classical Theta alone (Theta weight 1), which the service serves too;
- the bundle already at MODEL_DIR/NAME, if any, as it is (the incumbent);
- statsforecast's SeasonalNaive, AutoETS and Theta. The service's forecast task runs only the
  network + Theta pipeline, so these are measured and reported but never shipped: when one wins
  on validation, the report and the manifest say so and the best servable option ships.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from app.core.bundle import BundleError, Manifest, read_manifest, resolve_bundle_dir
from app.forecast.bundle import ForecastSection
from app.forecast.conformal import IntervalTable
from training import bundle as bundle_io
from training import report as run_report
from training.forecast.competitions import CompSeries
from training.forecast.export import TASK, export
from training.forecast.longformat import Columns, UserSeries, read_long_series, summary
from training.forecast.model import Ensemble, Forecaster

SHIPPED = "base"
TUNED = "fine-tuned"
CURRENT = "current"
SERIES_BASELINES = ("SeasonalNaive", "AutoETS", "Theta")
# A model name is a folder under MODEL_DIR and the `model` field of a request.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
README_SECTION = "forecast-userdata"
DEFAULT = "default"


@dataclass(frozen=True)
class LoadedNet:
    """A forecast bundle read back as an eager module (to fine-tune or score it)."""

    module: torch.nn.Module
    section: ForecastSection
    manifest: Manifest
    path: Path

    @property
    def label(self) -> str:
        return f"{self.path.parent.name} {self.manifest.version}"


def load_net(path: Path) -> LoadedNet:
    """The bundle at `path` (a version folder, or a model folder: its newest version)."""
    try:
        folder = path if (path / "manifest.json").is_file() else resolve_bundle_dir(path.parent, path.name)
        manifest = read_manifest(folder)
    except BundleError as exc:
        raise SystemExit(f"--base {path}: {exc}") from None
    if manifest.task != TASK:
        raise SystemExit(f"{folder} is a {manifest.task!r} bundle, not a forecast one")
    section = ForecastSection.model_validate(manifest.preprocessing)
    arch = manifest.architecture

    def member() -> Forecaster:
        return Forecaster(
            int(arch["n_static"]), int(arch["hidden"]), int(arch["layers"]), int(arch["horizon_max"])
        )

    members = int(arch.get("members", 1))
    module: torch.nn.Module = member() if members == 1 else Ensemble([member() for _ in range(members)])
    # TorchScript keeps the eager module's parameter names, so its state loads into a fresh one.
    scripted = torch.jit.load(str(folder / manifest.artifacts["torchscript"].path), map_location="cpu")  # type: ignore[no-untyped-call]
    module.load_state_dict(scripted.state_dict())
    module.eval()
    return LoadedNet(module, section, manifest, folder)


def next_version(version: str) -> str:
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    return f"{parts[0]}.{parts[1] + 1}.0"


@dataclass
class UserRun:
    series: list[UserSeries]
    base: LoadedNet
    current: LoadedNet | None  # the bundle at MODEL_DIR/NAME, unless it is the base itself
    incumbent: str | None  # the option that is the bundle at MODEL_DIR/NAME as it is
    name: str
    version: str
    model_dir: Path
    data: dict[str, Any]
    beaten: bool = True

    @property
    def comp(self) -> list[CompSeries]:
        return [s.as_comp() for s in self.series]

    def width(self, net: str) -> int:
        return (self.current if net == CURRENT and self.current else self.base).section.max_window

    def options(self, chosen: dict[str, dict[str, float]]) -> list[tuple[str, str, dict[str, float]]]:
        """(name, network, Theta weights) of every servable option; the incumbent comes first, so
        a tie on validation keeps it."""
        b = self.base.label
        shipped = dict(self.base.section.theta_weights)
        out: list[tuple[str, str, dict[str, float]]] = []
        if self.current is not None:
            out.append(
                (
                    f"{self.current.label} (current) as it is",
                    CURRENT,
                    dict(self.current.section.theta_weights),
                )
            )
        out.append((f"{b} as it is", SHIPPED, shipped))
        out.append((f"{b}, Theta weights chosen here", SHIPPED, chosen[SHIPPED]))
        if TUNED in chosen:
            out.append((f"{b} fine-tuned", TUNED, shipped))
            out.append((f"{b} fine-tuned, Theta weights chosen here", TUNED, chosen[TUNED]))
        out.append(("Theta (the service's own; weight 1)", SHIPPED, {DEFAULT: 1.0}))
        return out

    def pick(self, scores: dict[str, float], force: bool) -> str:
        """The option to ship: the best on validation; if that is the incumbent, nothing beat it
        (`beaten` False) and, with --force only, the best other option."""
        ranked = sorted(scores, key=lambda k: (scores[k], k != self.incumbent))
        self.beaten = ranked[0] != self.incumbent
        if not self.beaten and force and len(ranked) > 1:
            return ranked[1]
        return ranked[0]


def _existing(model_dir: Path, name: str) -> Path | None:
    try:
        return resolve_bundle_dir(model_dir, name)
    except BundleError:
        return None


def prepare_run(args: argparse.Namespace) -> UserRun:
    """Check the name, load the base bundle and read the file (a DataFileError at the first
    problem), all before any training; set the network's shape arguments from the base."""
    if not NAME_PATTERN.match(args.name):
        raise SystemExit(
            f"--name {args.name!r}: use lower-case letters, digits, '-' and '_', starting with a letter"
        )
    model_dir = (args.model_dir or bundle_io.DEFAULT_MODEL_DIR).resolve()
    base = load_net(args.base or bundle_io.DEFAULT_MODEL_DIR / TASK)
    cols = Columns(args.id_column, args.time_column, args.value_column)
    series = read_long_series(
        args.series,
        cols,
        frequency=args.frequency,
        horizon=args.horizon,
        horizon_max=base.section.horizon_max,
        fmt=args.format,
    )
    arch = base.manifest.architecture
    args.max_window = base.section.max_window
    args.horizon_max = base.section.horizon_max
    args.hidden, args.layers, args.members = (
        int(arch["hidden"]),
        int(arch["layers"]),
        int(arch.get("members", 1)),
    )
    found = _existing(model_dir, args.name)
    current = None
    incumbent = None
    if found is not None:
        if found.resolve() == base.path.resolve():
            incumbent = f"{base.label} as it is"
        else:
            current = load_net(found)
            incumbent = f"{current.label} (current) as it is"
    version = args.version or (next_version(found.name) if found is not None else "1.0.0")
    target = model_dir / args.name / version
    if target.exists() and not args.force:
        raise SystemExit(f"{target} exists: pass another --version, or --force to replace it")
    data = summary(series, args.series)
    data["base"] = {
        "bundle": base.label,
        "path": str(base.path),
        "code_revision": base.manifest.code_revision,
    }
    return UserRun(series, base, current, incumbent, args.name, version, model_dir, data)


# ---------------------------------------------------------------- report


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _num(x: float | None, digits: int) -> str:
    return "" if x is None or x != x else f"{x:.{digits}f}"


def option_rows(summary_: dict[str, Any]) -> list[list[str]]:
    """One row per option and baseline, best on validation first: validation score, MASE, sMAPE;
    test MASE, sMAPE, OWA and interval coverage (conformal for the servable options, AutoETS's
    own 95% interval for AutoETS)."""
    val = {**summary_["val_scores"]["by_option"], **summary_.get("baseline_validation", {})}
    val_tables = summary_.get("val_tables", {})
    tables = summary_["tables"]
    cover = summary_.get("coverage_by_option", {})
    ets = summary_.get("baseline_intervals", {}).get("all", {})
    rows = []
    for name in sorted(val, key=lambda k: val[k]):
        servable = name in summary_["val_scores"]["by_option"]
        t, v = tables.get(name, {}).get("all", {}), val_tables.get(name, {})
        c = cover.get(name, {}) or (
            {"coverage_95": ets.get("coverage_95"), "msis": ets.get("msis")} if name == "AutoETS" else {}
        )
        label = f"**{name}** (shipped)" if name == summary_["chosen"] else name
        rows.append(
            [
                label,
                "yes" if servable else "no",
                _num(val[name], 4),
                _num(v.get("mase"), 3),
                _num(v.get("smape"), 2),
                _num(t.get("mase"), 3),
                _num(t.get("smape"), 2),
                _num(t.get("owa"), 3),
                _pct(c.get("coverage_95")),
                _pct(c.get("coverage_80")),
                _pct(c.get("coverage_50")),
                _num(c.get("msis"), 2),
            ]
        )
    return rows


OPTION_HEADERS = [
    "option",
    "servable",
    "val score",
    "val MASE",
    "val sMAPE",
    "test MASE",
    "test sMAPE",
    "test OWA",
    "cover 95%",
    "80%",
    "50%",
    "MSIS",
]


def verdict(summary_: dict[str, Any], user: UserRun, force: bool) -> str:
    """What shipped and why, in plain words (the same sentences go into the manifest)."""
    servable = summary_["val_scores"]["by_option"]
    val = {**servable, **summary_.get("baseline_validation", {})}
    best = min(val, key=lambda k: val[k])
    chosen = summary_["chosen"]
    best_servable = min(servable, key=lambda k: servable[k])
    parts = []
    if best not in servable:
        parts.append(
            f"The best option on validation is statsforecast's {best} ({val[best]:.4f}), which the "
            "service cannot serve (its forecast task runs the LSTM + Theta pipeline only); the best "
            f"servable option is {best_servable} ({servable[best_servable]:.4f})."
        )
    else:
        parts.append(f"The best option on validation is {best} ({val[best]:.4f}).")
    if user.beaten:
        parts.append(f"Shipped: {chosen}.")
    elif force:
        parts.append(
            f"It is the current bundle as it is; --force: shipped the best other option, {chosen} "
            f"({servable[chosen]:.4f})."
        )
    else:
        parts.append("It is the current bundle as it is: nothing beat it on validation, nothing was written.")
    return " ".join(parts)


def calibration_note(summary_: dict[str, Any]) -> str:
    """How much the shipped intervals rest on, and how they did on test."""
    cal = summary_.get("calibration", {})
    tables = cal.get("series_per_table", {})
    c = summary_["coverage"]["all"]
    text = (
        "Intervals of the shipped option: conformal, from its errors on one validation window per "
        "series, by season length ("
        + ", ".join(f"{'pooled' if k == 'all' else 'season ' + k}: {n} series" for k, n in tables.items())
        + "; a season length with fewer than 10 series uses the pooled table)"
    )
    if cal.get("steps_pooled"):
        text += "; with fewer than 40 series a table pools its steps, each error as a multiple of sqrt(step)"
    text += (
        f". On test they covered {_pct(c['coverage_95'])}% / {_pct(c['coverage_80'])}% / "
        f"{_pct(c['coverage_50'])}% of the values (nominal 95 / 80 / 50)."
    )
    short = [lv for lv in (95, 80, 50) if c[f"coverage_{lv}"] < lv / 100 - 0.1]
    if short:
        text += (
            f" The {' / '.join(map(str, short))}% intervals fell short by more than 10 points: the same "
            "validation window also picked the fine-tuning step, the Theta weights and the option, "
            "so its errors are on the optimistic side, and one window per series says little about "
            "how much harder the next horizon may be."
        )
    return text


def markdown_sections(
    summary_: dict[str, Any], user: UserRun, args: argparse.Namespace, verdict_: str, total: float
) -> list[tuple[str, str]]:
    data = user.data
    freqs = ", ".join(f"{k}: {v}" for k, v in data["frequencies"].items())
    per = data["per_series"]
    series_rows = [
        [
            name,
            s["length"],
            f"{s['frequency']} ({s['frequency_source']})",
            s["season_length"],
            s["horizon"],
            s["start"][:19],
            s["end"][:19],
        ]
        for name, s in per.items()
    ]
    seconds = summary_["baseline_seconds"]
    return [
        (
            "Data",
            f"`{data['file']}`: {data['series']} series, {data['values']:,} values; lengths "
            f"{data['length_min']}..{data['length_max']} (median {data['length_median']:g}); "
            f"frequencies {freqs}. {data['splits'].capitalize()}.\n\n"
            + run_report.table(
                ["series", "length", "frequency", "season length", "horizon", "start", "end"], series_rows
            ),
        ),
        (
            "Options",
            "Scored on validation (the horizon before each series' last) and test (each series' last "
            "horizon). val score: mean over the frequency groups of the OWA-style ratio to Naive2, "
            "0.5 (sMAPE / sMAPE_Naive2 + MASE / MASE_Naive2), lower is better; the lowest servable "
            "option ships. MASE and sMAPE (%) are means over series; test OWA is relative to Naive2's "
            "test figures. Coverage (%) and MSIS of the 95% interval over every test step: conformal "
            "intervals calibrated on validation for the servable options, AutoETS's own for AutoETS.\n\n"
            + run_report.table(OPTION_HEADERS, option_rows(summary_))
            + f"\n\nBase bundle: {user.base.label} ({user.base.path}). Theta weights of the shipped option: "
            f"{summary_['theta_weights']}.\n\n" + calibration_note(summary_),
        ),
        ("Shipped", verdict_),
        (
            "Run",
            f"Whole run {total / 60:.1f} min: fine-tuning {summary_['train_seconds'] / 60:.1f} min "
            f"({args.steps} steps of {args.batch_size}, lr {args.lr}, best validation step kept), "
            "statsforecast baselines in a parallel process "
            + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
            + f". {args.threads} torch thread(s), seed {args.seed}. Machine: {run_report.machine()}. "
            f"Code: {bundle_io.code_revision()}.\n\nCommand: `python -m training.forecast "
            f"--series {args.series} --name {args.name}"
            + (f" --horizon {args.horizon}" if args.horizon else "")
            + (f" --frequency {args.frequency}" if args.frequency else "")
            + "`",
        ),
    ]


def readme_table(summary_: dict[str, Any], user: UserRun, total: float) -> str:
    """The README's measured figures: the option table of this run, from its own output."""
    d = user.data
    return (
        f"Measured on `{d['file']}` ({d['series']} series, {d['values']:,} values, frequencies "
        + ", ".join(f"{k}: {v}" for k, v in d["frequencies"].items())
        + f"; whole run {total / 60:.1f} min):\n\n"
        + run_report.table(OPTION_HEADERS, option_rows(summary_))
        + "\n\n"
        + verdict(summary_, user, force=False)
    )


def finish(
    args: argparse.Namespace,
    user: UserRun,
    net_key: str,
    net: torch.nn.Module,
    intervals: IntervalTable,
    summary_: dict[str, Any],
    t0: float,
) -> Path | None:
    """Write the bundle and REPORT.md beside it (unless the incumbent was not beaten and there is
    no --force, or --no-export); print the report either way."""
    verdict_ = verdict(summary_, user, args.force)
    total = time.time() - t0
    sections = markdown_sections(summary_, user, args, verdict_, total)
    text = "\n\n".join(f"## {h}\n\n{b}" for h, b in sections)
    print(text, flush=True)
    if args.no_export:
        return None
    if not user.beaten and not args.force:
        print(f"not shipping: {verdict_} (--force to ship anyway)", flush=True)
        return None
    tables = summary_["tables"]
    chosen = summary_["chosen"]
    test_all = tables[chosen]["all"]
    n = len(user.series)
    path = export(
        net,
        max_window=user.width(net_key),
        theta_weights=summary_["theta_weights"],
        intervals=intervals,
        version=user.version,
        model_dir=user.model_dir,
        name=user.name,
        overwrite=True,
        architecture={
            **user.base.manifest.architecture,
            "shipped_option": chosen,
            "started_from": user.base.label,
        },
        headline={
            "metric": "MASE",
            "value": round(float(test_all["mase"]), 4),
            "split": f"test: the last horizon of each of {n} series of {user.data['file']}",
        },
        metrics={
            "validation": {
                "score": round(summary_["val_scores"]["by_option"][chosen], 5),
                "by_option": summary_["val_scores"]["by_option"],
                "baselines": summary_.get("baseline_validation", {}),
                "tables": summary_.get("val_tables", {}),
                "theta_weights_by_network": summary_["val_scores"]["by_weight"],
                "by_step": summary_["val_history"],
            },
            "test": {name: t["all"] for name, t in tables.items()},
            "test_by_frequency": {
                name: {k: v for k, v in t.items() if k.startswith("series ")} for name, t in tables.items()
            },
            "intervals_test": summary_["coverage"],
            "intervals_validation": summary_["coverage_val"],
            "intervals_test_by_option": summary_.get("coverage_by_option", {}),
            "autoets_intervals_test": summary_["baseline_intervals"],
            "shipped_option": chosen,
            "calibration": summary_.get("calibration", {}),
            "verdict": verdict_,
        },
        data=user.data,
        training={
            "preset": "series",
            "fine_tuning_steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "seed": args.seed,
            "threads": args.threads,
            "train_seconds": summary_["train_seconds"],
            "baseline_seconds": summary_["baseline_seconds"],
            "total_seconds": round(total, 1),
            "machine": run_report.machine(),
            "splits": user.data["splits"],
        },
        notes="Figures: means over series; OWA relative to this run's Naive2. " + verdict_,
    )
    title = f"Forecasting model {user.name} {user.version}: {user.data['file']}"
    run_report.write_report(path, title, sections)
    print(f"wrote {path} and its {run_report.REPORT_NAME}", flush=True)
    if args.readme:
        bundle_io.replace_readme_section(README_SECTION, readme_table(summary_, user, total))
        print(f"README section {README_SECTION} updated", flush=True)
    return path
