"""Erasure: records of ``llmrec.erase`` delete a user's personal keys and recommendations."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from llmrec_stream.events.models import Erasure
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline.parts import BatchOutcome, StreamParts
from llmrec_stream.profiles.store import ProfileStore

log = logging.getLogger(__name__)


class Erasures:
    """Micro-batches of erasure requests."""

    def __init__(self, parts: StreamParts, store: ProfileStore) -> None:
        self.parts = parts
        self.store = store

    async def process_erasures(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Right to erasure: delete the user's personal keys, then tombstone their
        recommendations.

        The store keeps a marker (erased-at, offset watermarks) in the user's own keys, so an
        event batch already in flight or a replay from offset 0 cannot bring the user back.
        The tombstone goes out even for an erasure applied before (a replay, or a crash
        between the two steps): another null record is harmless.
        """
        parts = self.parts
        outcome = BatchOutcome(consumed=len(records))
        for env in await parts.decode(records, outcome):
            assert isinstance(env.event, Erasure)  # noqa: S101 - decode keys on the topic
            event, source = env.event, env.source
            erased = await parts.retry(
                lambda e=event, s=source: self.store.erase(e.user_id, e.ts, s)  # type: ignore[misc]
            )
            outcome.deliveries.append(await parts.sink.tombstone(event.user_id))
            if erased:
                outcome.applied += 1
            else:
                outcome.skipped += 1
            log.info("erased user at %s[%d]@%d%s", source.topic, source.partition,
                     source.offset, "" if erased else " (applied before)")
        return outcome
