"""Serving side of the trained ranking model: onnxruntime + numpy, never torch.

An artifact is a folder written by ``llmrec_stream.trainer.train``:

* ``model.onnx`` - the user tower. Kind ``seq``: inputs ``items`` (B, L) int64, item indices
  oldest to newest, left-padded with 0, and (text models) ``item_text`` (B, L, T) float32;
  output ``query`` (B, d). Kind ``fused``: input ``profile`` (B, T), the fused profile the
  worker keeps, output ``query`` (B, T).
* ``items.npy`` - the item tower, (n_items + 1, d) float32; row 0 is padding (zeros).
* ``item_ids.json`` - the catalog ids, index ``i + 1`` is ``item_ids[i]``.
* ``item_text.npy`` - (text models) the text vectors the model was trained with.
* ``manifest.json`` - kind, dims, metrics, and a sha256 for every file above.

Scores are ``query @ items.T``; a worker can take the top-k itself or hand the item matrix to
its exact index. Items the model has never seen are skipped in the recent-items input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from llmrec_stream.profiles.fusion import fuse
from llmrec_stream.ranking.protocol import Ranked, Ranker, TopK, rank_by_queries

if TYPE_CHECKING:
    from llmrec_stream.profiles.store import ProfileState
    from llmrec_stream.retrieval.protocol import ItemIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL = "model.onnx"
ITEMS = "items.npy"
ITEM_IDS = "item_ids.json"
ITEM_TEXT = "item_text.npy"
KINDS: tuple[str, ...] = ("seq", "fused")
Matrix = npt.NDArray[np.float32]


class ModelArtifactError(ValueError):
    """The artifact is missing, tampered with, of an unknown format or unusable here.

    ``reason`` is a short token for metrics and dead letters: ``unreadable``,
    ``checksum_mismatch``, ``incompatible``.
    """

    def __init__(self, detail: str, reason: str = "unreadable") -> None:
        super().__init__(detail)
        self.reason = reason


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelManifest:
    kind: str
    version: str
    dim: int
    text_dim: int
    max_len: int
    n_items: int
    files: dict[str, str]
    input_names: list[str]
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    max_abs_diff_vs_torch: float = 0.0
    created_at: str = ""
    format_version: int = FORMAT_VERSION
    #: `encoder_family` of the encoder whose text vectors the model was trained on; ""
    #: when it used none (ids only) or predates the field.
    encoder: str = ""

    @classmethod
    def read(cls, artifact_dir: Path) -> ModelManifest:
        try:
            raw = json.loads((artifact_dir / MANIFEST).read_text(encoding="utf-8"))
            manifest = cls(**raw)
        except (OSError, ValueError, TypeError) as exc:
            raise ModelArtifactError(f"{artifact_dir}: unreadable manifest ({exc})") from exc
        if manifest.format_version != FORMAT_VERSION or manifest.kind not in KINDS:
            raise ModelArtifactError(
                f"{artifact_dir}: unsupported format {manifest.format_version}/{manifest.kind}",
                "incompatible",
            )
        return manifest


def verify_model_artifact(artifact_dir: Path) -> ModelManifest:
    """Read the manifest and check every listed file's sha256 (and that the core files exist)."""
    artifact_dir = Path(artifact_dir)
    manifest = ModelManifest.read(artifact_dir)
    for name in (MODEL, ITEMS, ITEM_IDS):
        if name not in manifest.files:
            raise ModelArtifactError(f"{artifact_dir}: manifest does not list {name}")
    for name, digest in manifest.files.items():
        path = artifact_dir / name
        if "/" in name or not path.is_file():
            raise ModelArtifactError(f"{artifact_dir}: missing file {name}")
        if sha256_file(path) != digest:
            raise ModelArtifactError(f"{artifact_dir}: checksum mismatch for {name}",
                                     "checksum_mismatch")
    return manifest


class OnnxRanker:
    """The trained model as the worker runs it; see the module docstring for the artifact."""

    def __init__(self, artifact_dir: Path, *, verify: bool = True, threads: int = 1) -> None:
        import onnxruntime as ort

        self.dir = Path(artifact_dir)
        self.manifest = (verify_model_artifact if verify else ModelManifest.read)(self.dir)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(self.dir / MODEL), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self.items: Matrix = np.load(self.dir / ITEMS)
            ids = json.loads((self.dir / ITEM_IDS).read_text(encoding="utf-8"))
            text_file = self.dir / ITEM_TEXT
            self.item_text: Matrix | None = np.load(text_file) if text_file.is_file() else None
        except Exception as exc:  # onnxruntime raises its own types for a bad graph
            raise ModelArtifactError(f"{self.dir}: cannot load ({exc})") from exc
        self.item_ids: list[str] = list(ids)
        self.index = {item: i + 1 for i, item in enumerate(self.item_ids)}
        self._check_signature()

    def _check_signature(self) -> None:
        """The graph and the arrays must be what the manifest says, or nothing is served."""
        m = self.manifest
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = [o.name for o in self._session.get_outputs()]
        problems = []
        if sorted(inputs) != sorted(m.input_names):
            problems.append(f"graph inputs {sorted(inputs)} != manifest {sorted(m.input_names)}")
        expected = {"items": "tensor(int64)", "item_text": "tensor(float)",
                    "profile": "tensor(float)"}
        for name, spec in inputs.items():
            if name in expected and spec.type != expected[name]:
                problems.append(f"input {name} is {spec.type}, want {expected[name]}")
        if outputs != ["query"]:
            problems.append(f"graph outputs {outputs} != ['query']")
        if self.items.shape != (m.n_items + 1, m.dim) or len(self.item_ids) != m.n_items:
            problems.append(f"item tower {self.items.shape} / {len(self.item_ids)} ids does not "
                            f"match n_items={m.n_items}, dim={m.dim}")
        if "item_text" in m.input_names and (
            self.item_text is None or self.item_text.shape != (m.n_items + 1, m.text_dim)
        ):
            problems.append(f"item text matrix missing or not ({m.n_items + 1}, {m.text_dim})")
        if problems:
            raise ModelArtifactError(f"{self.dir}: " + "; ".join(problems), "incompatible")

    @property
    def version(self) -> str:
        return self.manifest.version

    def encode_recent(self, recent: Sequence[Sequence[str]]) -> dict[str, npt.NDArray[Any]]:
        """Graph feeds from recent-item lists as Redis keeps them (newest first).

        Items the model was not trained on are left out; the text vectors are the ones the
        model was trained with, so a live score equals the offline one.
        """
        max_len = self.manifest.max_len
        rows = [[self.index[i] for i in r if i in self.index][:max_len][::-1] for r in recent]
        width = max(1, max((len(r) for r in rows), default=1))
        items = np.zeros((len(rows), width), dtype=np.int64)
        for row, seq in enumerate(rows):
            if seq:
                items[row, width - len(seq) :] = seq
        feeds: dict[str, npt.NDArray[Any]] = {"items": items}
        if "item_text" in self.manifest.input_names:
            assert self.item_text is not None  # noqa: S101 - _check_signature made sure
            feeds["item_text"] = self.item_text[items]
        return feeds

    def queries_from_recent(self, recent: Sequence[Sequence[str]]) -> Matrix:
        """(B, d) queries; an empty history gives an all-zero row ("no signal yet")."""
        if self.manifest.kind != "seq":
            raise ModelArtifactError("queries_from_recent needs a kind='seq' model")
        if not recent:
            return np.zeros((0, self.manifest.dim), dtype=np.float32)
        (query,) = self._session.run(["query"], self.encode_recent(recent))
        empty = np.array([not any(i in self.index for i in r) for r in recent])
        query[empty] = 0.0
        return np.asarray(query, dtype=np.float32)

    def queries_from_profiles(self, profiles: Matrix) -> Matrix:
        """(B, T) queries from fused profiles (kind ``fused``); zero profiles stay zero."""
        if self.manifest.kind != "fused":
            raise ModelArtifactError("queries_from_profiles needs a kind='fused' model")
        feeds = {"profile": np.asarray(profiles, dtype=np.float32)}
        (query,) = self._session.run(["query"], feeds)
        query[~np.any(feeds["profile"], axis=1)] = 0.0
        return np.asarray(query, dtype=np.float32)

    def scores(self, queries: Matrix) -> Matrix:
        """(B, n_items + 1) scores; column 0 (padding) is -inf."""
        out = queries @ self.items.T
        out[:, 0] = -np.inf
        return out

    def top_k(
        self, queries: Matrix, k: int, exclude: Sequence[Collection[str]] = ()
    ) -> list[TopK]:
        """Best ``k`` (item id, score) per query row, without the excluded ids."""
        scores = self.scores(queries)
        for row, ids in enumerate(exclude):
            scores[row, [self.index[i] for i in ids if i in self.index]] = -np.inf
        k = min(k, len(self.item_ids))
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k else np.zeros((len(scores), 0))
        out = []
        for row, cols in enumerate(top.astype(np.int64)):
            best = cols[np.argsort(-scores[row, cols], kind="stable")]
            out.append([(self.item_ids[c - 1], float(scores[row, c])) for c in best
                        if np.isfinite(scores[row, c])])
        return out


class FusedMapRanker:
    """`Ranker` over a kind ``fused`` artifact: ``f(fused profile)``, in the item text space.

    It needs nothing beyond today's `ProfileState`, so the worker can serve it as it is; the
    queries are scored against the same item text vectors its index already holds.
    """

    def __init__(self, model: OnnxRanker, mix_text: float = 0.5) -> None:
        if model.manifest.kind != "fused":
            raise ModelArtifactError("FusedMapRanker needs a kind='fused' artifact")
        self.model, self.mix_text = model, mix_text

    @property
    def version(self) -> str:
        return self.model.version

    def queries(self, states: Sequence[ProfileState]) -> Matrix:
        if not states:
            return np.zeros((0, self.model.manifest.dim), dtype=np.float32)
        profiles = np.stack([fuse(s.text, s.behaviour, self.mix_text) for s in states])
        return self.model.queries_from_profiles(profiles)

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        return rank_by_queries(self.queries(states), states, k, index, self.version)


class SequenceRanker:
    """`Ranker` over a kind ``seq`` artifact: the user tower reads the recent-item list.

    Users with no item the model knows (new users, or only items newer than the model) go to
    ``fallback``, the fused-profile ranker, and their records carry its version instead.
    Items already in the user's recent list or bought are not recommended: the same history
    exclusion the offline harness applies, so live and offline top-k agree.
    """

    def __init__(self, model: OnnxRanker, fallback: Ranker) -> None:
        if model.manifest.kind != "seq":
            raise ModelArtifactError("SequenceRanker needs a kind='seq' artifact")
        self.model, self.fallback = model, fallback

    @property
    def version(self) -> str:
        return self.model.version

    def rank(self, states: Sequence[ProfileState], k: int, index: ItemIndex) -> list[Ranked]:
        known = [any(i in self.model.index for i in s.recent) for s in states]
        cold = [s for s, ok in zip(states, known, strict=True) if not ok]
        warm = [s for s, ok in zip(states, known, strict=True) if ok]
        cold_ranked = iter(self.fallback.rank(cold, k, index) if cold else [])
        warm_ranked: Iterator[Ranked] = iter(())
        if warm:
            queries = self.model.queries_from_recent([s.recent for s in warm])
            tops = self.model.top_k(queries, k, exclude=[{*s.recent, *s.bought} for s in warm])
            warm_ranked = iter([(self.version, top) for top in tops])
        return [next(warm_ranked) if ok else next(cold_ranked) for ok in known]

