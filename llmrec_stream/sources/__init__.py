"""Replay sources: a synthetic world with ground truth and loaders for real data sets.

Every source returns a :class:`Replay` of :class:`OutboundEvent` values that follow the event
contract, ready for the producer.
"""

from llmrec_stream.sources.amazon import load_amazon2018
from llmrec_stream.sources.atomic import AtomicDataset, atomic_replay, load_atomic
from llmrec_stream.sources.base import OutboundEvent, Replay
from llmrec_stream.sources.registry import load_replay
from llmrec_stream.sources.synthetic import SyntheticReplay, comment_text_for, synthetic_replay

__all__ = [
    "AtomicDataset",
    "OutboundEvent",
    "Replay",
    "SyntheticReplay",
    "atomic_replay",
    "comment_text_for",
    "load_amazon2018",
    "load_atomic",
    "load_replay",
    "synthetic_replay",
]
