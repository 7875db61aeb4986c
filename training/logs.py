"""One logging style for every training script: `logging` loggers named after their module,
configured once by the script's entry point to write timestamped lines to stderr and to a
progress log under logs/ (long runs are followed with `tail -f`)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

LOG_DIR = Path(__file__).resolve().parent / "logs"  # training/logs/, git-ignored
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(task: str, log_dir: Path = LOG_DIR) -> Path:
    """Send INFO and above to stderr and to `log_dir/<task>-<time>.progress.log`; returns that
    file's path."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{task}-{dt.datetime.now():%Y%m%d-%H%M%S}.progress.log"
    formatter = logging.Formatter(FORMAT)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in (logging.FileHandler(path), logging.StreamHandler(sys.stderr)):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    return path
