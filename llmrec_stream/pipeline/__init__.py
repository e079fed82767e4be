"""The stream's processing, one module per concern; it knows nothing about Faust.

- `parts`: what every concern shares (decode, dead letters, Redis retries, the encoder
  thread) and `BatchOutcome`;
- `user_events`: user events → profiles → retrieval → ranking → published top-k;
- `catalog_ingest`: catalog items and sponsored campaigns, encoded once and shared;
- `erasure`: the right to erasure;
- `model_control`: the live ranker, promotions and hot swaps;
- `assembled`: `Pipeline`, the four over one set of parts, as the worker runs them.
"""

from llmrec_stream.pipeline.assembled import Pipeline
from llmrec_stream.pipeline.parts import BatchOutcome
from llmrec_stream.pipeline.user_events import PreparedEvents

__all__ = ["BatchOutcome", "Pipeline", "PreparedEvents"]
