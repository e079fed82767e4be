"""Learn the sentiment head and the aspect anchors from rated reviews; attach them to an artifact.

`llmrec-stream train-sentiment` (extra ``sentiment``: scikit-learn). The reviews are Amazon 2018
5-core files (``*_5.json.gz``): star ratings with text. 4-5 stars are positive, 1-2 negative,
3 is dropped (neither). Training reads some categories, picks the regularisation on a
validation split of them, and is tested on a category it never saw, so the figure says how the
head carries to a new catalog. Only the review text is encoded: the summary ("Five Stars")
would give the label away, and a comment in the stream has no summary.

The head is a logistic regression on the encoder's L2-normalised vectors, balanced by class
weight (negatives are ~7% of these reviews). The runtime (`llmrec_stream.sentiment`) reads it
with numpy; scikit-learn is needed here only.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import numpy.typing as npt

from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.sentiment import (
    ASPECTS,
    ASPECTS_NAME,
    HEADS_FORMAT,
    SENTIMENT_NAME,
    attach_heads,
)

log = logging.getLogger(__name__)

#: A few phrases per aspect; their encoded mean is the aspect's direction.
ANCHOR_PHRASES: dict[str, tuple[str, ...]] = {
    "price": ("the price", "good value for the money", "too expensive", "cheap, worth the cost"),
    "quality": ("the build quality", "well made and durable", "poor quality, fell apart",
                "sturdy material"),
    "delivery": ("shipping and delivery", "arrived late", "fast shipping, arrived on time",
                 "the package was damaged in transit"),
    "fit": ("the size and fit", "runs small, order a size up", "fits perfectly",
            "too big, too tight"),
}
#: The share of training reviews that count as mentioning an aspect (sets its threshold).
MENTION_SHARE = 0.10
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class Reviews:
    texts: list[str]
    labels: npt.NDArray[np.int64]  # 1 positive (4-5 stars), 0 negative (1-2)


def read_reviews(path: Path, *, limit: int | None, seed: int) -> Reviews:
    """The labelled reviews of one file, deduplicated by text; ``limit`` samples them
    keeping every negative (they are scarce), then positives up to the limit."""
    pos: list[str] = []
    neg: list[str] = []
    seen: set[str] = set()
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = str(row.get("reviewText") or "").strip()
            stars = float(row.get("overall") or 0)
            if not text or text in seen or stars == 3:
                continue
            seen.add(text)
            (pos if stars >= 4 else neg).append(text)
    rng = np.random.default_rng(seed)
    if limit is not None and len(pos) + len(neg) > limit:
        keep = max(0, limit - len(neg))
        pos = [pos[i] for i in sorted(rng.choice(len(pos), size=keep, replace=False))]
    texts = neg + pos
    return Reviews(texts, np.array([0] * len(neg) + [1] * len(pos), dtype=np.int64))


def bootstrap_ci(
    y: npt.NDArray[np.int64], pred: npt.NDArray[np.int64], metric: Any, *, seed: int,
    resamples: int = 2000, level: float = 0.95,
) -> tuple[float, float, float]:
    """The metric and its percentile bootstrap interval over reviews drawn with replacement."""
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for i in range(resamples):
        draw = rng.integers(0, len(y), len(y))
        values[i] = metric(y[draw], pred[draw])
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(metric(y, pred)), float(low), float(high)


def train_heads(
    encoder: TextEncoder,
    train_files: Sequence[Path],
    test_file: Path,
    *,
    per_category: int = 1500,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Fit the head, test it, build the anchors: (files, heads.json content, report)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import train_test_split

    parts = [read_reviews(p, limit=per_category, seed=seed) for p in train_files]
    texts = [t for r in parts for t in r.texts]
    y = np.concatenate([r.labels for r in parts])
    test = read_reviews(test_file, limit=None, seed=seed)
    log.info("encoding %d training and %d test reviews", len(texts), len(test.texts))
    x = encoder.encode(texts).astype(np.float64)
    x_test = encoder.encode(test.texts).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x_test /= np.linalg.norm(x_test, axis=1, keepdims=True)

    def macro_f1(a: Any, b: Any) -> float:
        return float(f1_score(a, b, average="macro", zero_division=0))

    x_fit, x_val, y_fit, y_val = train_test_split(x, y, test_size=0.2, stratify=y,
                                                  random_state=seed)
    grid = {}
    for c in C_GRID:
        model = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
        model.fit(x_fit, y_fit)
        grid[c] = macro_f1(y_val, model.predict(x_val))
    best = max(C_GRID, key=lambda c: (grid[c], -c))  # ties: the stronger regularisation
    model = LogisticRegression(C=best, class_weight="balanced", max_iter=2000).fit(x, y)
    pred = model.predict(x_test).astype(np.int64)
    acc = bootstrap_ci(test.labels, pred, accuracy_score, seed=seed)
    f1 = bootstrap_ci(test.labels, pred, macro_f1, seed=seed)
    majority = float(np.mean(test.labels == 1))
    majority_f1 = macro_f1(test.labels, np.ones_like(test.labels))

    phrases = [p for name in ASPECTS for p in ANCHOR_PHRASES[name]]
    encoded = encoder.encode(phrases).astype(np.float64)
    anchors, start = [], 0
    for name in ASPECTS:
        end = start + len(ANCHOR_PHRASES[name])
        mean = encoded[start:end].mean(axis=0)
        anchors.append(mean / np.linalg.norm(mean))
        start = end
    a = np.stack(anchors)
    cos = x @ a.T  # training reviews x aspects
    thresholds = [float(np.quantile(cos[:, j], 1 - MENTION_SHARE)) for j in range(len(ASPECTS))]

    report = {
        "train": [p.name for p in train_files], "test": test_file.name,
        "train_reviews": len(texts), "train_negative": int((y == 0).sum()),
        "test_reviews": len(test.texts), "test_negative": int((test.labels == 0).sum()),
        "C_grid_val_macro_f1": {str(c): round(v, 4) for c, v in grid.items()}, "C": best,
        "accuracy": acc, "macro_f1": f1, "majority_accuracy": majority,
        "majority_macro_f1": majority_f1,
        "seed": seed, "bootstrap": "2000 resamples of test reviews, 95% percentile",
    }
    meta = {
        "format": HEADS_FORMAT,
        "sentiment": {"file": SENTIMENT_NAME, "bias": float(model.intercept_[0]),
                      "C": best, "test": {"category": test_file.name, "accuracy": acc[0],
                                          "macro_f1": f1[0]}},
        "aspects": {"file": ASPECTS_NAME, "names": list(ASPECTS), "thresholds": thresholds,
                    "phrases": {n: list(ANCHOR_PHRASES[n]) for n in ASPECTS}},
    }
    files = {SENTIMENT_NAME: model.coef_[0].astype(np.float32), ASPECTS_NAME: a}
    return files, meta, report


def train_and_attach(
    encoder: TextEncoder, artifact_dir: Path, train_files: Sequence[Path], test_file: Path,
    *, per_category: int = 1500, seed: int = 0,
) -> dict[str, Any]:
    """`train_heads`, then the files into the artifact (`attach_heads`); returns the report."""
    files, meta, report = train_heads(encoder, train_files, test_file,
                                      per_category=per_category, seed=seed)
    attach_heads(artifact_dir, files, meta)
    return report


@click.command("train-sentiment")
@click.option("--encoder-dir", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=None, help="The encoder artifact to learn on and attach to "
              "(default: the workers' one, LLMREC_ENCODER_DIR).")
@click.option("--data", "data_dir", type=click.Path(path_type=Path, exists=True,
              file_okay=False), required=True, help="A folder of Amazon 2018 *_5.json.gz files.")
@click.option("--train", "train_names", multiple=True, required=True,
              help="Training categories (file stems, e.g. All_Beauty_5); repeat the option.")
@click.option("--test", "test_name", required=True, help="The held-out category.")
@click.option("--per-category", type=click.IntRange(min=10), default=1500, show_default=True,
              help="Training reviews read per category (every negative, then positives).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Also write the report (JSON) here.")
def train_sentiment(encoder_dir: Path | None, data_dir: Path, train_names: tuple[str, ...],
                    test_name: str, per_category: int, seed: int,
                    report_path: Path | None) -> None:
    """Learn the sentiment head and aspect anchors from rated reviews, test them on a held-out
    category, ship them in the encoder artifact."""
    from llmrec_stream.encoder.artifact import default_encoder_dir
    from llmrec_stream.encoder.runtime import OnnxTextEncoder

    artifact = encoder_dir or default_encoder_dir()
    if test_name in train_names:
        raise click.BadParameter("the test category must not be a training one",
                                 param_hint="--test")

    def file(stem: str) -> Path:
        path = data_dir / (stem if stem.endswith(".json.gz") else f"{stem}.json.gz")
        if not path.is_file():
            raise click.BadParameter(f"no {path.name} in {data_dir}")
        return path

    encoder = OnnxTextEncoder.load(artifact)
    try:
        report = train_and_attach(encoder, artifact, [file(n) for n in train_names],
                                  file(test_name), per_category=per_category, seed=seed)
    finally:
        encoder.close()
    text = json.dumps(report, indent=2)
    if report_path is not None:
        report_path.write_text(text + "\n")
    click.echo(text)
