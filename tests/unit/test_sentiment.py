"""The sentiment head and aspect anchors: loading from the artifact, scoring, signing comments.

numpy only, no encoder: the artifact here is a manifest over placeholder graph files, and the
vectors are chosen along the head's own direction, so each test knows what the head must say.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llmrec_stream.encoder.artifact import ArtifactError, sha256_file, write_manifest
from llmrec_stream.events.models import Click, Comment
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import FusionWeights, contribution
from llmrec_stream.sentiment import (
    ASPECTS,
    ASPECTS_NAME,
    HEADS_FORMAT,
    SENTIMENT_NAME,
    Heads,
    TextSignals,
    attach_heads,
    load_heads,
)

DIM = 8
SHIPPED = Path(__file__).resolve().parents[1] / "heads"


def _artifact(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("model.onnx", "tokenizer.json"):
        (tmp_path / name).write_bytes(b"placeholder " + name.encode())
    write_manifest(tmp_path, source="test/encoder", dim=DIM, max_length=16, opset=17,
                   max_abs_diff_vs_torch=0.0)
    return tmp_path


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


W = np.array([3.0, -1.0, 0, 0, 0, 0, 0, 0], dtype=np.float32)
ANCHORS = np.eye(4, DIM, k=4, dtype=np.float32)  # aspects on axes 4..7, apart from the head's
META = {
    "format": HEADS_FORMAT,
    "sentiment": {"file": SENTIMENT_NAME, "bias": 0.5},
    "aspects": {"file": ASPECTS_NAME, "names": list(ASPECTS), "thresholds": [0.5] * 4},
}


def _attached(tmp_path: Path) -> Path:
    path = _artifact(tmp_path)
    attach_heads(path, {SENTIMENT_NAME: W, ASPECTS_NAME: ANCHORS}, META)
    return path


def test_an_artifact_without_heads_loads_none(tmp_path: Path) -> None:
    assert load_heads(_artifact(tmp_path), DIM) is None


def test_attached_heads_are_hashed_in_the_manifest_and_score_as_a_logistic_regression(
    tmp_path: Path,
) -> None:
    path = _attached(tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    assert {SENTIMENT_NAME, ASPECTS_NAME, "heads.json"} <= set(manifest["files"])
    assert manifest["heads"] == ["aspects", "sentiment"]
    heads = load_heads(path, DIM)
    assert heads is not None and heads.sentiment is not None and heads.aspects is not None
    x = np.random.default_rng(0).normal(size=(5, DIM)).astype(np.float32)
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = 1 / (1 + np.exp(-(unit @ W + 0.5)))
    np.testing.assert_allclose(heads.sentiment.probability(x), expected, rtol=1e-6)
    positive, negative = _unit(np.eye(DIM)[0]), _unit(-np.eye(DIM)[0])
    assert heads.sentiment.scale(positive) == pytest.approx(2 / (1 + np.exp(-3.5)) - 1)
    assert heads.sentiment.scale(negative) == pytest.approx(2 / (1 + np.exp(2.5)) - 1)
    # aspects: cosine 1 to "price" is a full mention; below the threshold, none
    np.testing.assert_allclose(heads.aspects.mentions(ANCHORS[0]), [1, 0, 0, 0])
    half = _unit(ANCHORS[1] + np.eye(DIM, dtype=np.float32)[0] * 1.5)  # cos ≈ 0.55 to quality
    m = heads.aspects.mentions(half)
    assert m[1] == pytest.approx((1 / np.sqrt(3.25) - 0.5) / 0.5) and m[0] == m[2] == m[3] == 0


def test_a_swapped_head_file_or_a_wrong_dimension_is_refused(tmp_path: Path) -> None:
    path = _attached(tmp_path)
    np.save(path / SENTIMENT_NAME, -W)
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        load_heads(path, DIM)
    other = _attached(tmp_path / "other")
    with pytest.raises(ArtifactError, match="dim is 16"):
        load_heads(other, 16)


def test_a_malformed_or_unsafe_heads_file_is_an_artifact_error(tmp_path: Path) -> None:
    from llmrec_stream.sentiment import HEADS_NAME

    for meta in ({**META, "sentiment": {"file": SENTIMENT_NAME}},  # no bias
                 {**META, "sentiment": {"file": "../sentiment.npy", "bias": 0.0}},
                 {**META, "format": 99}):
        path = _artifact(tmp_path / str(len(list(tmp_path.iterdir()))))
        attach_heads(path, {SENTIMENT_NAME: W, ASPECTS_NAME: ANCHORS}, meta)
        with pytest.raises(ArtifactError):
            load_heads(path, DIM)
    path = _attached(tmp_path / "garbled")
    (path / HEADS_NAME).write_text("{not json")
    with pytest.raises(ArtifactError, match="does not match"):  # refused before parsing
        load_heads(path, DIM)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"][HEADS_NAME] = sha256_file(path / HEADS_NAME)  # an operator's bad edit
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unreadable heads"):
        load_heads(path, DIM)


def test_an_unrated_comment_is_signed_by_the_head_and_a_rated_one_keeps_its_rating(
    tmp_path: Path,
) -> None:
    heads = load_heads(_attached(tmp_path), DIM)
    assert heads is not None
    metrics = Metrics()
    signals = TextSignals(heads, metrics)
    weights = FusionWeights()
    item = _unit(np.arange(1, DIM + 1, dtype=np.float32))
    bad_text = _unit(-np.eye(DIM, dtype=np.float32)[0] + ANCHORS[0])  # negative, about price
    unrated = Comment("c1", 1, "u", "text", "i1", None)
    tc, bc, aspects = signals.apply(unrated, bad_text, item, weights)
    scale = heads.sentiment.scale(bad_text) if heads.sentiment else 0.0
    assert scale < -0.5
    assert bc is not None and float(bc @ item) == pytest.approx(weights.review * scale, rel=1e-5)
    old_tc, old_bc = contribution(unrated, bad_text, item, weights)
    assert old_bc is not None and float(old_bc @ item) > 0  # what it was: +0.5, toward
    np.testing.assert_array_equal(tc, old_tc)  # the text's own direction is unchanged
    assert aspects and aspects[0] < 0 and aspects[1:] == (0, 0, 0)  # price, badly
    assert signals.named(aspects) == {"price": aspects[0]}
    assert metrics.sentiment_signed.labels("negative")._value.get() == 1
    rated = Comment("c2", 1, "u", "text", "i1", 5)
    _, bc5, aspects5 = signals.apply(rated, bad_text, item, weights)
    np.testing.assert_array_equal(bc5, contribution(rated, bad_text, item, weights)[1])
    assert aspects5[0] > 0  # a 5-star comment on the price: praise, whatever the head says
    click = Click("k1", 1, "u", "i1")
    np.testing.assert_array_equal(signals.apply(click, None, item, weights)[1],
                                  contribution(click, None, item, weights)[1])
    assert metrics.sentiment_signed.labels("negative")._value.get() == 1  # rated: not counted


def test_without_a_sentiment_head_nothing_is_signed(tmp_path: Path) -> None:
    heads = load_heads(_attached(tmp_path), DIM)
    assert heads is not None
    signals = TextSignals(Heads(None, heads.aspects, heads.meta))
    item = _unit(np.ones(DIM, dtype=np.float32))
    unrated = Comment("c1", 1, "u", "text", "i1", None)
    text = _unit(-np.eye(DIM, dtype=np.float32)[0])
    tc, bc, _ = signals.apply(unrated, text, item, FusionWeights())
    old_tc, old_bc = contribution(unrated, text, item, FusionWeights())
    np.testing.assert_array_equal(bc, old_bc)
    np.testing.assert_array_equal(tc, old_tc)


def test_the_shipped_test_heads_fit_minilm_and_name_the_four_aspects() -> None:
    """tests/heads: the head `train-sentiment` learned on the MiniLM artifact (see
    docs/features.md), which the integration tests attach to the session's encoder."""
    meta = json.loads((SHIPPED / "heads.json").read_text())
    assert meta["format"] == HEADS_FORMAT and meta["aspects"]["names"] == list(ASPECTS)
    assert np.load(SHIPPED / SENTIMENT_NAME).shape == (384,)
    assert np.load(SHIPPED / ASPECTS_NAME).shape == (len(ASPECTS), 384)
