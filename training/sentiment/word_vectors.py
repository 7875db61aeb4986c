"""Pre-train word2vec on the 75k IMDB reviews that carry no test labels (train + unsup).

    python -m training.sentiment.word_vectors [--data-dir ...] [--dim 100] [--epochs 1]

The test reviews are left out so the test split stays unseen. Output: a word2vec text file
(`word v1 ... vd`), the same format as GloVe, read by `training.sentiment.embeddings`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from training.logs import setup_logging
from training.sentiment.cache import DEFAULT_CACHE_DIR, tokenised_path
from training.sentiment.data import DEFAULT_DATA_DIR

log = logging.getLogger(__name__)
DEFAULT_OUTPUT = DEFAULT_CACHE_DIR / "imdb-word2vec.txt"


def train_word_vectors(
    data_dir: Path,
    cache_dir: Path,
    output: Path,
    dim: int = 100,
    epochs: int = 1,
    min_count: int = 5,
    workers: int = 2,
    seed: int = 13,
) -> dict[str, object]:
    """The IMDB preset's vectors: train + unsup reviews from the tokenised cache."""
    files = [tokenised_path(data_dir, s, cache_dir, workers) for s in ("train", "unsup")]
    corpus = cache_dir / "w2v-corpus.txt"
    corpus.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
    return vectors_from_corpus(
        corpus,
        output,
        "IMDB train (25,000) + unsup (50,000) reviews, same tokenizer as the classifier",
        dim=dim,
        epochs=epochs,
        min_count=min_count,
        workers=workers,
        seed=seed,
    )


def vectors_from_corpus(
    corpus: Path,
    output: Path,
    description: str,
    dim: int = 100,
    epochs: int = 1,
    min_count: int = 5,
    workers: int = 2,
    seed: int = 13,
) -> dict[str, object]:
    """Skip-gram vectors from `corpus` (one text a line, tokens space-separated), written to
    `output` in word2vec's text format with a JSON side-car describing them. The corpus file is
    removed afterwards (its presence tells other processes training is under way)."""
    from gensim.models import Word2Vec

    started = time.time()
    # Skip-gram is slower than CBOW but clearly better for rarer words on a corpus this small.
    model = Word2Vec(
        corpus_file=str(corpus),
        vector_size=dim,
        window=5,
        min_count=min_count,
        sg=1,
        negative=5,
        sample=1e-4,
        epochs=epochs,
        workers=workers,
        seed=seed,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a concurrent or interrupted run never sees half a file.
    partial = output.with_name(output.name + ".partial")
    model.wv.save_word2vec_format(str(partial), binary=False)
    partial.rename(output)
    corpus.unlink()
    info = {
        "method": "gensim word2vec skip-gram",
        "gensim": __import__("gensim").__version__,
        "corpus": description,
        "dim": dim,
        "epochs": epochs,
        "window": 5,
        "min_count": min_count,
        "words": len(model.wv),
        "seconds": round(time.time() - started, 1),
    }
    info_path(output).write_text(json.dumps(info, indent=2), encoding="utf-8")
    log.info("word2vec: %s", info)
    return info


def info_path(vectors: Path) -> Path:
    """Side-car JSON describing how the vectors were trained, copied into the bundle manifest."""
    return vectors.with_suffix(".json")


def in_progress(cache_dir: Path) -> bool:
    """True while another process trains the vectors (its corpus file exists until it is done)."""
    return (cache_dir / "w2v-corpus.txt").is_file()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE_DIR)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1, help="1 fitted the shared-CPU budget")
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    setup_logging("word2vec")
    train_word_vectors(
        args.data_dir, args.cache_dir, args.output, args.dim, args.epochs, args.min_count, args.workers
    )


if __name__ == "__main__":
    main()
