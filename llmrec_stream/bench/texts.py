"""Benchmark texts: real review and item texts from ``../shared/data``, of mixed lengths.

The encoder benchmark must measure what the stream encodes: short review summaries, long
review bodies and item titles with categories. Nothing here is copied into the repository;
callers get a `BenchDataError` naming the folder when it is absent (a user's fresh clone).
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

#: The shared data folder, relative to the project root (the current folder when run).
DEFAULT_DATA_DIR = Path("../shared/data")
AMAZON_GLOB = "amazon2018/*_5.json.gz"
SCIENTIFIC_TEXT = "scientific/Scientific.text"


class BenchDataError(FileNotFoundError):
    """The shared data the benchmark reads is not there."""


def review_texts(data_dir: Path) -> list[str]:
    """Every Amazon 2018 5-core review as ``summary. reviewText`` (empty ones dropped)."""
    files = sorted(Path(data_dir).glob(AMAZON_GLOB))
    if not files:
        raise BenchDataError(f"no {AMAZON_GLOB} under {data_dir} (the shared data folder)")
    out: list[str] = []
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                raw = json.loads(line)
                summary = str(raw.get("summary") or "").strip()
                body = str(raw.get("reviewText") or "").strip()
                text = f"{summary}. {body}" if summary and body else summary or body
                if text:
                    out.append(text)
    return out


def item_texts(data_dir: Path) -> list[str]:
    """Every Scientific item text (title, categories, brand), in file order."""
    path = Path(data_dir) / SCIENTIFIC_TEXT
    if not path.is_file():
        raise BenchDataError(f"no {SCIENTIFIC_TEXT} under {data_dir} (the shared data folder)")
    out: list[str] = []
    with path.open(encoding="utf-8") as fh:
        next(fh, None)  # the atomic-format header: item_id:token<TAB>text:token_seq
        for line in fh:
            _, _, text = line.rstrip("\n").partition("\t")
            if text.strip():
                out.append(text.strip())
    return out


def load_bench_texts(n: int, data_dir: Path = DEFAULT_DATA_DIR, seed: int = 0) -> list[str]:
    """`n` texts, half reviews and half item texts (as far as each source goes), shuffled.

    The draw is seeded, so every contender and every run sees the same texts in the same
    order; the order is random rather than sorted so no contender is handed pre-sorted input.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    reviews, items = review_texts(data_dir), item_texts(data_dir)
    n_items = min(len(items), n // 2)
    n_reviews = min(len(reviews), n - n_items)
    texts = rng.sample(reviews, n_reviews) + rng.sample(items, n_items)
    if len(texts) < n:
        raise BenchDataError(f"only {len(texts)} texts under {data_dir}, {n} asked")
    rng.shuffle(texts)
    return texts
