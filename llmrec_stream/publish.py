"""Where the pipeline's output goes: the Sink contract and the recommendation record."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from llmrec_stream.events.codec import dumps


class Sink(Protocol):
    """Output of the pipeline. Faust topics in the worker; a confluent producer elsewhere."""

    async def recommendation(self, user_id: str, payload: bytes) -> None:
        """Publish on ``llmrec.recommendations``, keyed by user."""

    async def tombstone(self, user_id: str) -> None:
        """Publish a null value for the user on ``llmrec.recommendations`` (compaction drops
        every earlier record of theirs)."""

    async def dead_letter(
        self, key: bytes | None, payload: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Publish on ``llmrec.dlq``."""


def recommendation_record(
    user_id: str,
    ranked: Sequence[tuple[str, float]],
    model_version: str,
    event_ids: Sequence[str],
    trigger_ts: int,
) -> bytes:
    """The ``llmrec.recommendations`` value (``schemas/recommendation.json``)."""
    return dumps(
        {
            "schema_version": 1,
            "user_id": user_id,
            "items": [item for item, _ in ranked],
            "scores": [round(score, 6) for _, score in ranked],
            "model_version": model_version,
            "event_ids": list(event_ids),
            "trigger_ts": trigger_ts,
            "published_ts": int(time.time() * 1000),
        }
    )
