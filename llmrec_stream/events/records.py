"""The raw record every consumer hands on: the Faust agents, the log reader, the trainer.

It lives with the events, below everything that reads topics, so a reader of the log
(`llmrec_stream.kafka_log`, the trainer's `event_log`) does not import the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A Kafka record as the pipeline needs it, whoever consumed it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
