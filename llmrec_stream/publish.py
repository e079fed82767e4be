"""Where the pipeline's output goes: the Sink contract and the recommendation record."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from llmrec_stream.events.codec import dumps

if TYPE_CHECKING:
    from llmrec_stream.explain import Reason


class Sink(Protocol):
    """Output of the pipeline. Faust topics in the worker.

    Each method hands a record to the producer and returns its delivery: an awaitable that
    resolves once the broker acknowledged the record (acks=all) and raises if it refused it.
    The pipeline collects the deliveries of a micro-batch (``BatchOutcome.deliveries``), and
    the batch's offsets become committable only once every one resolved (`llmrec_stream.commit`).
    """

    async def recommendation(self, user_id: str, payload: bytes) -> Awaitable[object]:
        """Publish on ``llmrec.recommendations``, keyed by user."""

    async def tombstone(self, user_id: str) -> Awaitable[object]:
        """Publish a null value for the user on ``llmrec.recommendations`` (compaction drops
        every earlier record of theirs)."""

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> Awaitable[object]:
        """Publish on ``llmrec.dlq``."""


def recommendation_record(
    user_id: str,
    ranked: Sequence[tuple[str, float]],
    model_version: str,
    event_ids: Sequence[str],
    trigger_ts: int,
    reasons: Sequence[Reason | None] | None = None,
    campaigns: Sequence[str | None] | None = None,
    *,
    aspects: Mapping[str, float] | None = None,
) -> bytes:
    """The ``llmrec.recommendations`` value (``schemas/recommendation.json``, version 2).

    ``reasons``: one per ranked item (`llmrec_stream.explain`); None publishes every reason as
    null (nothing to cite), so the record always has one entry per item. ``campaigns``: per
    item, the campaign that placed it there (a sponsored slot), or None for an organic item.
    ``aspects``: the user's aspect scores (`llmrec_stream.sentiment`), published when given.
    """
    reasons = [None] * len(ranked) if reasons is None else reasons
    campaigns = [None] * len(ranked) if campaigns is None else campaigns
    if not len(reasons) == len(campaigns) == len(ranked):
        raise ValueError(f"{len(reasons)} reasons and {len(campaigns)} placements for "
                         f"{len(ranked)} items")
    record: dict[str, Any] = {
        "schema_version": 2,
        "user_id": user_id,
        "items": [item for item, _ in ranked],
        "scores": [round(score, 6) for _, score in ranked],
        "model_version": model_version,
        "event_ids": list(event_ids),
        "trigger_ts": trigger_ts,
        "published_ts": int(time.time() * 1000),
        "reasons": [None if r is None else r.record() for r in reasons],
        "placements": [
            None if c is None else {"sponsored": True, "campaign_id": c} for c in campaigns
        ],
    }
    if aspects is not None:
        record["aspects"] = {name: round(float(v), 3) for name, v in sorted(aspects.items())}
    return dumps(record)
