"""Tokenising 100k reviews takes minutes, so each split is tokenised once and kept as a text file
(one review a line, tokens space-separated) that gensim can also stream directly."""

from __future__ import annotations

import logging
from multiprocessing import get_context
from pathlib import Path

from training.sentiment.data import preprocess, read_split

log = logging.getLogger(__name__)
DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[1] / "logs" / "sentiment-cache"


def _line(text: str) -> str:
    return " ".join(preprocess(text))


def tokenised_split(data_dir: Path, split: str, cache_dir: Path, workers: int = 1) -> list[list[str]]:
    path = tokenised_path(data_dir, split, cache_dir, workers)
    return [line.split(" ") if line else [] for line in path.read_text(encoding="utf-8").split("\n")[:-1]]


def tokenised_path(data_dir: Path, split: str, cache_dir: Path, workers: int = 1) -> Path:
    """The cache file for `split`, written first if missing. Lines follow `read_split` order."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{split}.tokens.txt"
    if path.is_file():
        return path
    texts = [r.text for r in read_split(data_dir, split)]
    log.info("tokenising %d %s reviews with %d worker(s)", len(texts), split, workers)
    if workers > 1:
        with get_context("fork").Pool(workers) as pool:
            lines = pool.map(_line, texts, chunksize=256)
    else:
        lines = [_line(t) for t in texts]
    tmp = path.with_suffix(".partial")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.rename(path)
    return path
