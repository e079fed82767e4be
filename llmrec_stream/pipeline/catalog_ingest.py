"""Catalog ingest: items of ``llmrec.items`` and campaigns of ``llmrec.sponsored``.

Both encode text once, on the worker that owns the record's partition, and share the result
through Redis with every worker (the catalog's vectors, the campaigns' targeting queries).
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrec_stream.events.models import Campaign, Item
from llmrec_stream.events.records import RawRecord
from llmrec_stream.pipeline.parts import BatchOutcome, StreamParts
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.sponsored.slots import Sponsor


class CatalogIngest:
    """Micro-batches of catalog items and of sponsored campaigns."""

    def __init__(self, parts: StreamParts, catalog: Catalog, sponsor: Sponsor | None) -> None:
        self.parts = parts
        self.catalog = catalog
        self.sponsor = sponsor
        """Places sponsored items (`llmrec_stream.sponsored`); None: organic lists only."""

    async def process_items(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Encode catalog items and share their vectors with every worker.

        Items the catalog already holds with the same content (`Catalog.stale`: the start-up
        bootstrap encoded them, or this is a replay) are counted as skipped, not encoded again.
        """
        parts = self.parts
        outcome = BatchOutcome(consumed=len(records))
        latest: dict[str, Item] = {}
        for env in await parts.decode(records, outcome):
            assert isinstance(env.event, Item)  # noqa: S101 - decode keys on the topic
            latest[env.event.item_id] = env.event  # a later update of an item wins
        fresh = list(latest.values())
        items = await parts.retry(lambda: self.catalog.stale(fresh)) if fresh else []
        outcome.skipped = len(fresh) - len(items)
        if items:
            vectors = await parts.encode([it.text() for it in items])
            await parts.retry(lambda: self.catalog.publish(items, vectors))
            parts.metrics.items.set(len(self.catalog.index))
            outcome.applied = len(items)
        return outcome

    async def process_sponsored(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """Campaigns of ``llmrec.sponsored`` into the table every worker mirrors.

        A null value (a tombstone of the compacted topic) withdraws its campaign; a targeting
        query is encoded here, once, and stored with the campaign. Without a sponsor (sponsored
        slots off) the records are only counted.
        """
        parts = self.parts
        outcome = BatchOutcome(consumed=len(records))
        if self.sponsor is None:
            return outcome
        table = self.sponsor.table
        gone = [r.key.decode("utf-8", errors="replace") for r in records
                if r.value is None and r.key]
        latest: dict[str, Campaign] = {}
        for env in await parts.decode([r for r in records if r.value is not None], outcome):
            assert isinstance(env.event, Campaign)  # noqa: S101 - decode keys on the topic
            latest[env.event.campaign_id] = env.event
        if gone:
            await parts.retry(lambda: table.withdraw(gone))
        campaigns = [c for c in latest.values() if c.campaign_id not in gone]
        if campaigns:
            texts = [c.query for c in campaigns if c.query]
            vectors = iter(await parts.encode(texts)) if texts else iter(())
            queries = [next(vectors) if c.query else None for c in campaigns]
            await parts.retry(lambda: table.upsert(campaigns, queries))
        outcome.applied = len(campaigns) + len(gone)
        return outcome
