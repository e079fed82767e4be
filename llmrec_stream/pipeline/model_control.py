"""Model control: which ranker serves, promotions from ``llmrec.models``, and hot swaps.

It owns the live ranker; user events read it once per micro-batch (`UserEvents`), so a swap
lands between batches, never inside one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from llmrec_stream.events.codec import Rejected
from llmrec_stream.events.models import Source
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline.parts import BatchOutcome, StreamParts
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower
from llmrec_stream.ranking.shadow import ShadowRun

log = logging.getLogger(__name__)


class ModelControl:
    """The live ranker, the published models' promotion and every worker's follow."""

    def __init__(
        self,
        parts: StreamParts,
        *,
        ranker: Ranker,
        models: ModelFollower | None,
        shadow: ShadowRun | None,
    ) -> None:
        self.parts = parts
        self.ranker = ranker
        self.models = models
        self.shadow = shadow
        """Ranks beside the live model, unpublished, and scores both (`ranking.shadow`)."""
        parts.metrics.model_version.labels(ranker.version).set(1)

    async def process_models(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Records of ``llmrec.models``: check each artifact and decide its promotion.

        An invalid record or artifact is a dead letter with its reason; a valid model that
        evaluates below the live one is counted and logged, not promoted. Every worker then
        picks up the live pointer through `follow_models`.
        """
        parts = self.parts
        outcome = BatchOutcome(consumed=len(records))
        models = self.models
        if models is None:
            return outcome
        for r in records:
            decision = await parts.retry(lambda v=r.value: models.consider(v))  # type: ignore[misc]
            parts.metrics.model_decisions.labels(decision.reason).inc()
            if decision.promoted:
                outcome.applied += 1
            elif decision.dead_letter:
                rejected = Rejected(f"model_{decision.reason}", decision.detail,
                                    Source(r.topic, r.partition, r.offset),
                                    "ModelArtifactError", r.key, r.value)
                await parts.dead_letter(rejected, outcome)
        return outcome

    async def follow_models(self) -> bool:
        """Swap in the live model if it moved; True when a swap happened."""
        if self.shadow is not None:
            await self.shadow.follow()
        if self.models is None:
            return False
        found = await self.models.poll()
        if found is None:
            return False
        record, ranker = found
        self.swap_ranker(ranker)
        log.info("now serving model %s", record.version)
        return True

    def swap_ranker(self, ranker: Ranker) -> None:
        """Atomic between micro-batches: a batch reads ``self.ranker`` once."""
        metrics = self.parts.metrics
        metrics.model_version.clear()
        metrics.model_version.labels(ranker.version).set(1)
        self.ranker = ranker
