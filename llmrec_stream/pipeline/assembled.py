"""`Pipeline`: one worker's four concerns over one set of shared parts.

User events (`user_events`), catalog ingest (`catalog_ingest`: items and sponsored
campaigns), erasure (`erasure`) and model control (`model_control`) each live in their own
module; they share one `StreamParts` (decode, dead letters, retries, the encoder thread).
This class builds them from one set of arguments (`worker.build_pipeline` passes the
settings) and hands each agent its entry point, so the Faust wiring stays one object.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrec_stream.dlq import DEFAULT_VALUE_PREFIX_BYTES
from llmrec_stream.encoder.protocol import TextEncoder
from llmrec_stream.events.codec import Limits
from llmrec_stream.events.records import RawRecord
from llmrec_stream.metrics import Metrics
from llmrec_stream.pipeline.catalog_ingest import CatalogIngest
from llmrec_stream.pipeline.erasure import Erasures
from llmrec_stream.pipeline.model_control import ModelControl
from llmrec_stream.pipeline.parts import BatchOutcome, StreamParts
from llmrec_stream.pipeline.user_events import PreparedEvents, UserEvents
from llmrec_stream.profiles.fusion import FusionWeights
from llmrec_stream.profiles.store import ProfileStore
from llmrec_stream.publish import Sink
from llmrec_stream.ranking.protocol import Ranker
from llmrec_stream.ranking.registry import ModelFollower
from llmrec_stream.ranking.shadow import ShadowRun
from llmrec_stream.retrieval.catalog import Catalog
from llmrec_stream.sentiment import TextSignals
from llmrec_stream.social.blend import SocialBlend
from llmrec_stream.sponsored.slots import Sponsor


class Pipeline:
    """Processes micro-batches of user events, catalog items, campaigns, erasures and models."""

    def __init__(
        self,
        *,
        encoder: TextEncoder,
        store: ProfileStore,
        catalog: Catalog,
        ranker: Ranker,
        sink: Sink,
        metrics: Metrics,
        weights: FusionWeights,
        limits: Limits,
        top_k: int = 20,
        worker_id: str = "worker",
        retry_max_s: float = 5.0,
        models: ModelFollower | None = None,
        unknown_item_wait_s: float = 0.0,
        dlq_value_prefix_bytes: int = DEFAULT_VALUE_PREFIX_BYTES,
        dlq_send_attempts: int = 5,
        explain_max_events: int = 3,
        sponsor: Sponsor | None = None,
        social: SocialBlend | None = None,
        shadow: ShadowRun | None = None,
        text_signals: TextSignals | None = None,
    ) -> None:
        """``unknown_item_wait_s``: how long a batch waits for an item it names to reach the
        catalog (`UserEvents._drop_unknown_items`); 0 dead-letters an unknown item at once."""
        self.store = store
        self.catalog = catalog
        self.metrics = metrics
        self.models = models
        self.parts = StreamParts(
            encoder=encoder, sink=sink, metrics=metrics, limits=limits, worker_id=worker_id,
            retry_max_s=retry_max_s, dlq_value_prefix_bytes=dlq_value_prefix_bytes,
            dlq_send_attempts=dlq_send_attempts,
        )
        self.control = ModelControl(self.parts, ranker=ranker, models=models, shadow=shadow)
        self.catalog_ingest = CatalogIngest(self.parts, catalog, sponsor)
        self.erasures = Erasures(self.parts, store)
        self.user_events = UserEvents(
            self.parts, self.control, store=store, catalog=catalog, weights=weights,
            top_k=top_k, unknown_item_wait_s=unknown_item_wait_s,
            explain_max_events=explain_max_events, sponsor=sponsor, social=social,
            shadow=shadow, text_signals=text_signals,
        )

    @property
    def ranker(self) -> Ranker:
        """The model serving now (model control's)."""
        return self.control.ranker

    # --- entry points, one per topic (and the model timer) ------------------------------

    async def process_events(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """`UserEvents.process_events`."""
        return await self.user_events.process_events(records)

    async def prepare_events(self, records: Sequence[RawRecord]) -> PreparedEvents:
        """`UserEvents.prepare_events`."""
        return await self.user_events.prepare_events(records)

    async def apply_events(self, prepared: PreparedEvents) -> BatchOutcome:
        """`UserEvents.apply_events`."""
        return await self.user_events.apply_events(prepared)

    async def process_items(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """`CatalogIngest.process_items`."""
        return await self.catalog_ingest.process_items(records)

    async def process_sponsored(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """`CatalogIngest.process_sponsored`."""
        return await self.catalog_ingest.process_sponsored(records)

    async def process_erasures(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """`Erasures.process_erasures`."""
        return await self.erasures.process_erasures(records)

    async def process_models(self, records: Sequence[RawRecord]) -> BatchOutcome:
        """`ModelControl.process_models`."""
        return await self.control.process_models(records)

    async def follow_models(self) -> bool:
        """`ModelControl.follow_models`."""
        return await self.control.follow_models()

    def swap_ranker(self, ranker: Ranker) -> None:
        """`ModelControl.swap_ranker`."""
        self.control.swap_ranker(ranker)

    def close(self) -> None:
        """Stop the encoder thread once its batch is done, and the encoder's own threads."""
        self.parts.close()
