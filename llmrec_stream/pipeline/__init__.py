"""The stream's processing; it knows nothing about Faust."""

from llmrec_stream.pipeline.user_events import BatchOutcome, Pipeline, PreparedEvents

__all__ = ["BatchOutcome", "Pipeline", "PreparedEvents"]
