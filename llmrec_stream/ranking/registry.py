"""Model versions as the workers see them: the published record, its checks, promotion.

The trainer writes an artifact (``llmrec_stream.ranking.model``) and publishes a `ModelRecord`
on ``llmrec.models``. The worker that owns that topic's partition checks the artifact (the
manifest's sha256 against the record, every file's sha256 against the manifest, the graph's
signature against what this worker can feed it) and then decides promotion in one atomic Redis
call: a model whose validation NDCG@10 is below the live one's is refused unless the record
says ``force``. The decision is a pointer in Redis, ``{models}:live``; every worker follows it
and swaps its ranker between micro-batches (`ModelFollower`). A model that fails any check is
never served: the live one keeps serving. A record with ``shadow`` runs in shadow instead
(``llmrec_stream.ranking.shadow``), and promotion can also ask for its online win there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis

from llmrec_stream.events.codec import validator
from llmrec_stream.ranking.model import (
    MANIFEST,
    FusedMapRanker,
    ModelArtifactError,
    ModelManifest,
    OnnxRanker,
    SequenceRanker,
    sha256_file,
)
from llmrec_stream.ranking.protocol import Ranker

log = logging.getLogger(__name__)


class ShadowGate(Protocol):
    """What promotion asks of the shadow side (`ranking.shadow_gate.ShadowRegistry`): named
    here as a protocol so that the registry does not import the shadow modules, which import
    the registry's records."""

    @property
    def rule(self) -> object | None:
        """The online promotion rule, None when promotion needs no online win."""

    async def start(self, record: ModelRecord) -> None: ...

    async def refusal(self, record: ModelRecord, live: ModelRecord | None) -> str | None: ...

    async def promoted(self, version: str) -> None: ...

LIVE_KEY = "{models}:live"
#: The metric that decides promotion, as it appears in a record's ``metrics``.
SELECT_METRIC = "valid_ndcg@10"

# Compare-and-set of the live pointer. KEYS[1] the pointer hash; ARGV: version, sha256,
# score, force ("1"/"0"), record JSON, the live version an online comparison was made against
# ("": none; another live version now refuses). Returns {promoted 1/0, live version, score}.
_PROMOTE = """
local live_score = tonumber(redis.call("HGET", KEYS[1], "score"))
if ARGV[6] ~= "" and redis.call("HGET", KEYS[1], "version") ~= ARGV[6] then
  return {0, redis.call("HGET", KEYS[1], "version"), tostring(live_score)}
end
if ARGV[4] ~= "1" and live_score ~= nil and tonumber(ARGV[3]) < live_score then
  return {0, redis.call("HGET", KEYS[1], "version"), tostring(live_score)}
end
redis.call("HSET", KEYS[1], "version", ARGV[1], "sha256", ARGV[2], "score", ARGV[3],
           "record", ARGV[5])
return {1, ARGV[1], ARGV[3]}
"""


@dataclass(frozen=True)
class ModelRecord:
    """The ``llmrec.models`` value (``schemas/model_update.json``)."""

    version: str
    sha256: str
    location: str
    metrics: dict[str, float]
    created_ts: int
    force: bool = False
    schema_version: int = 1
    shadow: bool = False
    """Run beside the live model, unpublished, to be scored online (`ranking.shadow`)."""

    @classmethod
    def for_artifact(cls, artifact_dir: Path, *, force: bool = False) -> ModelRecord:
        """The record announcing an artifact written by the trainer."""
        artifact_dir = Path(artifact_dir).resolve()
        manifest = ModelManifest.read(artifact_dir)
        metrics = {
            f"{split}_{name}": float(value)
            for split in ("valid", "test")
            for name, value in manifest.metrics.get(split, {}).items()
        }
        return cls(manifest.version, sha256_file(artifact_dir / MANIFEST), str(artifact_dir),
                   metrics, int(time.time() * 1000), force)

    @classmethod
    def parse(cls, raw: bytes | str | None) -> ModelRecord:
        try:
            obj = json.loads(raw or b"")
            validator("model_update")(obj)
        except Exception as exc:  # JSON or schema: both mean "not a model record"
            raise ModelArtifactError(f"not a valid model record: {exc}", "invalid_record") from exc
        if not all(math.isfinite(v) for v in obj["metrics"].values()):
            raise ModelArtifactError("not a valid model record: non-finite metric",
                                     "invalid_record")
        return cls(**obj)

    def dumps(self) -> bytes:
        obj = asdict(self)
        if not self.shadow:  # the record stays readable by workers that predate shadows
            del obj["shadow"]
        return json.dumps(obj, sort_keys=True).encode("utf-8")

    @property
    def score(self) -> float:
        """Validation NDCG@10; a record without it never beats a live model (unless forced)."""
        return float(self.metrics.get(SELECT_METRIC, -1.0))  # NDCG is never below 0


def load_ranker(
    record: ModelRecord, text_dim: int, fallback: Ranker, *, threads: int = 1, encoder: str = ""
) -> Ranker:
    """Check the artifact a record points to and build the ranker that serves it.

    Raises `ModelArtifactError` (with its ``reason``) on anything this worker cannot serve,
    an artifact this worker cannot read included: a missing or unreadable file, a location the
    file system refuses (``OSError``) is reason ``unreadable``, so the models agent dead-letters
    the record and the follower keeps its ranker instead of crashing (and restarting into the
    same record).

    ``encoder``: this worker's `encoder_family`; a model trained on another encoder's text
    vectors is ``incompatible`` (same width or not, its rankings would be noise).
    """
    try:
        return _load_ranker(record, text_dim, fallback, threads=threads, encoder=encoder)
    except OSError as exc:
        raise ModelArtifactError(
            f"{record.location}: cannot read the artifact ({exc})", "unreadable"
        ) from exc


def _load_ranker(
    record: ModelRecord, text_dim: int, fallback: Ranker, *, threads: int, encoder: str
) -> Ranker:
    path = Path(record.location)
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise ModelArtifactError(f"{path}: no {MANIFEST}", "unreadable")
    if sha256_file(manifest_file) != record.sha256:
        raise ModelArtifactError(
            f"{path}: manifest sha256 differs from the published record", "checksum_mismatch"
        )
    model = OnnxRanker(path, verify=True, threads=threads)
    if model.version != record.version:
        raise ModelArtifactError(
            f"{path}: artifact is {model.version!r}, record says {record.version!r}",
            "incompatible",
        )
    if model.manifest.encoder and encoder and model.manifest.encoder != encoder:
        raise ModelArtifactError(
            f"{path}: trained on the encoder {model.manifest.encoder}, this worker runs "
            f"{encoder}: retrain on this encoder's vectors",
            "incompatible",
        )
    if model.manifest.kind == "fused":
        if model.manifest.text_dim != text_dim:
            raise ModelArtifactError(
                f"{path}: profile input is {model.manifest.text_dim}-d, the encoder's {text_dim}-d",
                "incompatible",
            )
        return FusedMapRanker(model)
    return SequenceRanker(model, fallback)


@dataclass
class Decision:
    promoted: bool
    reason: str
    live_version: str | None = None
    detail: str = ""

    @property
    def dead_letter(self) -> bool:
        """A refusal of the record itself (invalid, unreadable...), not a policy's verdict."""
        return self.reason not in ("promoted", "not_better", "not_better_online", "shadowed")


@dataclass
class ModelFollower:
    """One worker's view of the registry: decides promotions, follows the live pointer."""

    client: aioredis.Redis
    text_dim: int
    fallback: Ranker
    threads: int = 1
    #: this worker's `encoder_family` (models trained on another encoder are refused)
    encoder: str = ""
    retry_s: float = 30.0
    live_sha256: str | None = None
    _failed: dict[str, float] = field(default_factory=dict)
    #: The last model this worker checked in `consider`, so `poll` need not load it again.
    _checked: tuple[str, Ranker] | None = None
    shadows: ShadowGate | None = None
    """Starts shadow runs and gates promotion on them; None: a shadow record is refused."""

    def __post_init__(self) -> None:
        self._promote = self.client.register_script(_PROMOTE)

    async def consider(self, raw: bytes | None) -> Decision:
        """A record from ``llmrec.models``: check its artifact, then promote it or refuse."""
        try:
            record = ModelRecord.parse(raw)
            ranker = await asyncio.to_thread(load_ranker, record, self.text_dim, self.fallback,
                                             threads=self.threads, encoder=self.encoder)
        except ModelArtifactError as exc:
            log.error("model refused (%s): %s", exc.reason, exc)
            return Decision(False, exc.reason, detail=str(exc))
        if record.shadow:
            if self.shadows is None:
                return Decision(False, "shadow_off", detail="this worker runs no shadows")
            await self.shadows.start(record)
            return Decision(False, "shadowed", detail=f"{record.version} runs in shadow")
        compared = ""
        if self.shadows is not None and self.shadows.rule is not None and not record.force:
            live_record = await self.live_record()
            refusal = await self.shadows.refusal(record, live_record)
            if refusal is not None:
                log.warning("model not promoted: %s", refusal)
                return Decision(False, "not_better_online",
                                live_record.version if live_record else None, refusal)
            compared = live_record.version if live_record else ""
        self._checked = (record.sha256, ranker)
        ok, version, score = await self._promote(
            keys=[LIVE_KEY],
            args=[record.version, record.sha256, repr(record.score), int(record.force),
                  record.dumps(), compared],
        )
        live = version.decode() if isinstance(version, bytes) else str(version)
        if not ok:
            detail = (f"{record.version} has {SELECT_METRIC} {record.score:.5f}, below live "
                      f"{live} ({float(score):.5f}); publish with force to override")
            log.warning("model not promoted: %s", detail)
            return Decision(False, "not_better", live, detail)
        log.info("model %s promoted (%s %.5f)", record.version, SELECT_METRIC, record.score)
        if self.shadows is not None:
            await self.shadows.promoted(record.version)
        return Decision(True, "promoted", live)

    async def live_record(self) -> ModelRecord | None:
        raw = await self.client.hget(LIVE_KEY, "record")
        return None if raw is None else ModelRecord.parse(raw)

    async def poll(self) -> tuple[ModelRecord, Ranker] | None:
        """A new ranker when the live pointer moved to a model this worker has not loaded.

        A model that fails its checks here is retried only after ``retry_s``; meanwhile the
        current ranker keeps serving.
        """
        record = await self.live_record()
        if record is None or record.sha256 == self.live_sha256:
            return None
        if time.monotonic() < self._failed.get(record.sha256, 0.0):
            return None
        try:
            if self._checked is not None and self._checked[0] == record.sha256:
                ranker = self._checked[1]
            else:
                ranker = await asyncio.to_thread(load_ranker, record, self.text_dim,
                                                 self.fallback, threads=self.threads,
                                                 encoder=self.encoder)
        except ModelArtifactError as exc:
            log.error("live model %s not loaded (%s): %s; keeping %s", record.version,
                      exc.reason, exc, self.live_sha256 or "the current ranker")
            now = time.monotonic()
            # only retry times still ahead matter: the map stays as small as the bad models
            # published within one retry period
            self._failed = {k: t for k, t in self._failed.items() if t > now}
            self._failed[record.sha256] = now + self.retry_s
            return None
        self.live_sha256, self._checked = record.sha256, None
        return record, ranker

