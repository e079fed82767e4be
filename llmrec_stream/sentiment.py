"""Sentiment and aspects read from what users write: heads shipped inside the encoder artifact.

A star rating used to be the only thing that signed a comment's contribution, and most comments
have none: an unrated comment on an item counted as mild interest (+0.5) even when it said the
item broke on day one. The sentiment head is a logistic regression on the encoder's unit vectors
(`llmrec-stream train-sentiment` learns it from rated reviews); its probability p of "positive"
becomes a signed scale 2p - 1 in [-1, 1] that replaces the +0.5 of an unrated comment. A rated
comment keeps its rating: the user said it in stars, the model only guesses.

Aspects (price, quality, delivery, size/fit) are anchor directions: the mean of a few encoded
anchor phrases per aspect. A comment mentions an aspect by how far its cosine to the anchor
passes that aspect's threshold (set at training time from the reviews' cosines); the mention
times the comment's signed sentiment is what the comment adds to the user's aspect score.

The heads are files of the artifact (``sentiment.npy``, ``aspects.npy``, ``heads.json``), hashed
in its manifest like the graph, so a worker never uses a head trained for another encoder, and
an artifact without them leaves the stream as it was. numpy only: nothing here trains.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.encoder.artifact import ArtifactError, read_manifest, sha256_file
from llmrec_stream.events.models import Comment, UserEvent
from llmrec_stream.metrics import Metrics
from llmrec_stream.profiles.fusion import FusionWeights, Vector, behaviour_weight, contribution

HEADS_NAME = "heads.json"
SENTIMENT_NAME = "sentiment.npy"
ASPECTS_NAME = "aspects.npy"
HEADS_FORMAT = 1
#: The aspects `train-sentiment` anchors; a profile stores their scores in this order.
ASPECTS: tuple[str, ...] = ("price", "quality", "delivery", "fit")


@dataclass(frozen=True, slots=True)
class SentimentHead:
    """Logistic regression on unit encoder vectors: p(positive) = sigmoid(w·x + b)."""

    weights: npt.NDArray[np.float32]
    bias: float

    def probability(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """p(positive) per row; rows are L2-normalised first (the head was trained so)."""
        x = np.atleast_2d(vectors).astype(np.float64)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        z = x @ self.weights.astype(np.float64) + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))

    def scale(self, vector: Vector) -> float:
        """The signed scale an unrated comment gets: 2p - 1, from -1 (negative) to +1."""
        return float(2.0 * self.probability(vector)[0] - 1.0)


@dataclass(frozen=True, slots=True)
class AspectAnchors:
    """Unit anchor directions per aspect and the cosine above which a comment mentions it."""

    names: tuple[str, ...]
    anchors: npt.NDArray[np.float32]  # (len(names), dim), unit rows
    thresholds: tuple[float, ...]

    def mentions(self, vector: Vector) -> npt.NDArray[np.float64]:
        """Per aspect, 0 (not mentioned) to 1: the cosine's way from the threshold to 1."""
        return self.mentions_many(vector)[0]

    def mentions_many(self, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """`mentions` of every row (n × aspects); a zero row mentions nothing.

        The ranker reads an item's mentions from the item vector every worker already holds
        (`llmrec_stream.ranking.aspects`): four dot products an item, no encoding.
        """
        x = np.atleast_2d(vectors).astype(np.float64)
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
        cos = x @ self.anchors.astype(np.float64).T
        t = np.asarray(self.thresholds, dtype=np.float64)
        return np.clip((cos - t) / np.maximum(1.0 - t, 1e-6), 0.0, 1.0)


@dataclass(frozen=True, slots=True)
class Heads:
    """What the artifact ships beside the encoder; either part may be absent."""

    sentiment: SentimentHead | None
    aspects: AspectAnchors | None
    meta: dict[str, Any]


def _checked(artifact_dir: Path, name: str, files: dict[str, str]) -> Path:
    # a head file must be hashed in the manifest like the graph: a swapped file is refused;
    # heads sit at the artifact's top level, so a name with a path in it is refused too
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ArtifactError(f"{HEADS_NAME} in {artifact_dir} names an unsafe file: {name!r}")
    path = artifact_dir / name
    expected = files.get(name)
    if expected is None:
        raise ArtifactError(f"{HEADS_NAME} in {artifact_dir} names {name}, the manifest does not")
    if not path.is_file() or sha256_file(path) != expected:
        raise ArtifactError(f"head file {name} in {artifact_dir} does not match its manifest")
    return path


def load_heads(artifact_dir: Path, dim: int) -> Heads | None:
    """The artifact's heads, or None when it has none (then nothing changes downstream).

    Raises `ArtifactError` for a head that is listed but missing, tampered with or of another
    dimension: a worker must not guess what its operator shipped.
    """
    artifact_dir = Path(artifact_dir)
    manifest = read_manifest(artifact_dir)
    if HEADS_NAME not in manifest.files:
        return None
    try:
        return _read_heads(artifact_dir, dim, manifest.files)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ArtifactError):
            raise
        raise ArtifactError(f"unreadable heads in {artifact_dir}: {exc!r}") from exc


def _read_heads(artifact_dir: Path, dim: int, files: dict[str, str]) -> Heads:
    raw = json.loads(_checked(artifact_dir, HEADS_NAME, files).read_text("utf-8"))
    if not isinstance(raw, dict) or raw.get("format") != HEADS_FORMAT:
        raise ArtifactError(f"{HEADS_NAME} in {artifact_dir}: unknown format")
    sentiment = aspects = None
    if "sentiment" in raw:
        spec = raw["sentiment"]
        w = np.load(_checked(artifact_dir, str(spec["file"]), files))
        if w.shape != (dim,) or not math.isfinite(float(spec["bias"])):
            raise ArtifactError(f"sentiment head of shape {w.shape}, the encoder's dim is {dim}")
        sentiment = SentimentHead(w.astype(np.float32), float(spec["bias"]))
    if "aspects" in raw:
        spec = raw["aspects"]
        a = np.load(_checked(artifact_dir, str(spec["file"]), files))
        names = tuple(str(n) for n in spec["names"])
        thresholds = tuple(float(t) for t in spec["thresholds"])
        if a.shape != (len(names), dim) or len(thresholds) != len(names):
            raise ArtifactError(f"aspect anchors of shape {a.shape} for {len(names)} names")
        aspects = AspectAnchors(names, a.astype(np.float32), thresholds)
    return Heads(sentiment, aspects, raw)


def attach_heads(artifact_dir: Path, files: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write head files (name -> array) and ``heads.json`` into an artifact; hash them in.

    The manifest keeps every other field; it is rewritten through a temporary name, so a
    reader never sees half of it. The encoder's identity (`encoder_identity`) does not change:
    the vectors are the same, only what is read from them is new.
    """
    artifact_dir = Path(artifact_dir)
    read_manifest(artifact_dir)  # an artifact to attach to, or a clear error
    for name, array in files.items():
        np.save(artifact_dir / name, np.asarray(array, dtype=np.float32), allow_pickle=False)
    (artifact_dir / HEADS_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    path = artifact_dir / "manifest.json"
    raw = json.loads(path.read_text("utf-8"))
    for name in [*files, HEADS_NAME]:
        raw["files"][name] = sha256_file(artifact_dir / name)
    raw["heads"] = sorted(k for k in ("sentiment", "aspects") if k in meta)
    tmp = artifact_dir / ".manifest.json.tmp"
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


@dataclass(slots=True)
class TextSignals:
    """The streaming side: signs unrated comments and measures aspects (`Pipeline` calls it)."""

    heads: Heads
    metrics: Metrics | None = None
    rank_weight: float = 0.0
    """The aspect term's weight in the ranking (`llmrec_stream.ranking.aspects`); 0: off."""
    rank_pool: int = 30
    """Candidates past top-k the aspect term may bring into a list."""

    def apply(
        self, event: UserEvent, text_vec: Vector | None, item_vec: Vector | None,
        weights: FusionWeights,
    ) -> tuple[Vector | None, Vector | None, tuple[float, ...]]:
        """One event's (text, behaviour) contributions and aspect additions, counted."""
        scale = self.signed(event, text_vec)
        tc, bc = self.contribution(event, text_vec, item_vec, weights, scale)
        aspects = self.aspects(event, text_vec, scale)
        if self.metrics is not None:
            if scale is not None and item_vec is not None and getattr(event, "item_id", None):
                self.metrics.sentiment_signed.labels(
                    "negative" if scale < 0 else "positive").inc()
            names = () if self.heads.aspects is None else self.heads.aspects.names
            for name, delta in zip(names, aspects, strict=False):
                if delta != 0.0:
                    self.metrics.aspect_updates.labels(name).inc()
        return tc, bc, aspects

    def signed(self, event: UserEvent, text_vec: Vector | None) -> float | None:
        """The sentiment scale of an unrated comment with a vector; None when it keeps its own
        (a rated comment, any other event, or no sentiment head)."""
        head = self.heads.sentiment
        if (head is None or text_vec is None
                or not isinstance(event, Comment) or event.rating is not None):
            return None
        return head.scale(text_vec)

    def contribution(
        self, event: UserEvent, text_vec: Vector | None, item_vec: Vector | None,
        weights: FusionWeights, scale: float | None,
    ) -> tuple[Vector | None, Vector | None]:
        """`fusion.contribution`, with the item's weight signed and scaled by ``scale``."""
        tc, bc = contribution(event, text_vec, item_vec, weights)
        if scale is None or item_vec is None or behaviour_weight(event, weights) == 0:
            return tc, bc
        return tc, (weights.review * scale * item_vec).astype(np.float32)

    def aspects(self, event: UserEvent, text_vec: Vector | None,
                scale: float | None) -> tuple[float, ...]:
        """What a comment adds to each aspect, in the anchors' order: mention × sentiment
        (3 decimals); () when it mentions none (the profile then stays as it was)."""
        anchors = self.heads.aspects
        if anchors is None or text_vec is None or not isinstance(event, Comment):
            return ()
        if event.rating is not None:
            sign = (event.rating - 3) / 2.0
        elif scale is not None:  # `signed`: the head's 2p - 1 of this unrated comment
            sign = scale
        else:
            sign = 1.0  # no head, no rating: a mention counts as interest
        deltas = tuple(round(float(m) * sign, 3) for m in anchors.mentions(text_vec))
        return deltas if any(deltas) else ()

    def named(self, scores: tuple[float, ...]) -> dict[str, float]:
        """A profile's aspect scores by name, those not zero (what the record shows)."""
        names = () if self.heads.aspects is None else self.heads.aspects.names
        return {n: s for n, s in zip(names, scores, strict=False) if s != 0.0}
