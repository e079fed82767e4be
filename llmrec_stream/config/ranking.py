"""From events to a ranked list: profile fusion, what a profile keeps, retrieval, ranking and
the ranking models."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from llmrec_stream.config.base import Section, flat


class FusionWeights(Section):
    """Profile fusion: how much each kind of event moves a profile.

    Purchase > click by default.
    The profile maths (`profiles.fusion`) takes this section itself, so the weights a worker
    applies are exactly the ones configured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    click: float = Field(1.0, **flat("weight_click"), description="Behaviour weight of a click.")
    purchase: float = Field(
        3.0, **flat("weight_purchase"), description="Behaviour weight of a purchase."
    )
    review: float = Field(
        2.0, **flat("weight_review"),
        description="Behaviour weight of a reviewed item, times the rating's sign/scale.",
    )
    comment_text: float = Field(
        1.0, **flat("weight_comment_text"), description="Weight of a comment's text vector."
    )
    half_life_s: float = Field(
        7 * 24 * 3600.0, gt=0, description="Exponential time decay half-life of profiles."
    )
    mix_text: float = Field(
        0.5, ge=0, le=1, description="Share of the text vector in the fused query vector."
    )


class ProfileSettings(Section):
    """Profiles: what one user's profile in Redis keeps."""

    recent_items: int = Field(50, ge=1, description="Length of the recent-items list.")
    seen_items: int = Field(
        500, ge=0, description="Purchased items remembered for filtering (bounded)."
    )
    max_attributes: int = Field(
        6, ge=0,
        description=(
            "Attribute keys (categorical and numeric) one profile holds at most. Updates of "
            "held keys always apply; a new key past the bound (taken in name order), or a "
            "name longer than 30 bytes, is dropped and counted in the profile's a_dropped "
            "field. The default keeps a realistic profile within 4 KB of Redis."
        ),
    )
    explain_comments: int = Field(
        2, ge=0, le=8,
        description="Last comments a profile keeps (each as a 16-byte sketch of its vector and "
        "its log coordinates, never its text) so that a recommendation's reason can name one. "
        "2 keeps a realistic profile within 4 KB of Redis.",
    )


class RetrievalSettings(Section):
    """Retrieval: exact search, or an HNSW index for large catalogs."""

    ann_min_items: int = Field(
        50_000, ge=1,
        description="Catalog size from which workers search an HNSW index instead of exactly.",
    )
    ann_connectivity: int = Field(32, ge=2, description="HNSW graph degree (M).")
    ann_expansion_search: int = Field(
        256, ge=1, description="HNSW candidate list while searching (efSearch): recall vs time."
    )
    ann_max_stale: float = Field(
        0.25, ge=0,
        description="Rebuild the HNSW graph when replaced items' rows pass this share of items.",
    )


class RankingSettings(Section):
    """Recommendations: the published list and its reasons."""

    top_k: int = Field(20, ge=1, description="Recommendations published per user.")
    explain_max_events: int = Field(
        3, ge=1, le=15,
        description="Distinct events one recommendation list cites as reasons at most (each "
        "item names its best event among them); 3 keeps a top-20 cache within the 4 KB.",
    )


class ModelSettings(Section):
    """Ranking models: the one served at start and how workers follow the live one."""

    flat_prefix: ClassVar[str] = "model_"

    dir: str = Field(
        "", description="Ranking model artifact served at start while none is promoted."
    )
    poll_s: float = Field(
        1.0, gt=0, description="How often a worker checks which model is live."
    )
