"""Benchmark texts: real review and item texts from ``../shared/data``, of mixed lengths.

The encoder benchmark must measure what the stream encodes: short review summaries, long
review bodies and item titles with categories. Nothing here is copied into the repository;
callers get a `BenchDataError` naming the folder when it is absent (a user's fresh clone).

The ``zh-en`` set (`zh_en_texts`) is for the multilingual encoder: half Chinese, half
English, written by the synthetic generator (no data set, so it works on a fresh clone and
is identical on every machine), item texts and comments as the worker encodes them.
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


#: The text sets ``bench encoder --text-set`` offers: real data, or Chinese + English.
TEXT_SETS = ("shared", "zh-en")


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


def zh_en_texts(n: int, seed: int = 0) -> list[str]:
    """`n` texts, half Chinese and half English, each half item texts and user comments from
    the synthetic world (`synthetic_replay` with ``lang="zh"`` and ``"en"``), shuffled.

    Item texts are what the worker encodes for an item (title, description, tags); comments
    are the generator's reviews. Same `n` and `seed`, same list, on any machine.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    from llmrec_stream.events.topics import COMMENTS, ITEMS
    from llmrec_stream.sources.synthetic import synthetic_replay

    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    texts: list[str] = []
    for lang, count in (("zh", n - n // 2), ("en", n // 2)):
        n_items, n_comments = count // 2, count - count // 2
        # comments are ~30 % of events: ask for enough events to have n_comments of them
        replay = synthetic_replay(
            n_items=max(40, n_items), n_users=50, n_events=4 * n_comments + 40,
            seed=seed, lang=lang,
        )
        items = [
            ". ".join(p for p in (e.value["title"], e.value["description"],
                                  ", ".join(e.value["tags"])) if p)
            for e in replay.items if e.topic == ITEMS
        ]
        comments = [str(e.value["text"]) for e in replay.events if e.topic == COMMENTS]
        if len(items) < n_items or len(comments) < n_comments:
            raise ValueError(f"the {lang} world is too small for {count} texts")
        texts += items[:n_items] + comments[:n_comments]
    rng.shuffle(texts)
    return texts
