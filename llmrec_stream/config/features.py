"""Business features (sponsored slots, social signals, shadow models), the pull API and the
trainer's reading of the event log."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, SecretStr

from llmrec_stream.config.base import Section, flat


class SponsoredSettings(Section):
    """Sponsored slots: campaign items placed in the top-k."""

    flat_prefix: ClassVar[str] = "sponsored_"

    enabled: bool = Field(
        True, description="Place sponsored items from llmrec.sponsored campaigns in the top-k.")
    positions: str = Field(
        "3,8", pattern=r"^\s*\d+(\s*,\s*\d+)*\s*$",
        description="1-based positions of the top-k that sponsored items may take.")
    max_items: int = Field(
        2, ge=0, description="Sponsored items per list at most (the first positions first).")
    floor: float = Field(
        0.3, ge=-1.0, le=1.0,
        description="Least cosine of a sponsored item (and of a targeting query) to the user's "
        "fused profile, the fused ranker's own score, for it to be placed.")
    frequency_cap: int = Field(
        3, ge=1, description="Impressions of one campaign per user per window at most.")
    frequency_window_s: float = Field(
        86_400.0, gt=0, description="The frequency cap's window (fixed, from the first one).")
    refresh_s: float = Field(
        0.5, ge=0, description="How often a worker checks the campaign table for changes.")


class SocialSettings(Section):
    """Social signals: followees' profiles blended into one's ranking."""

    flat_prefix: ClassVar[str] = "social_"

    weight: float = Field(
        0.5, ge=0,
        description="How much the users one follows count in one's ranking: the followees' "
        "mean profile direction (each decayed by its owner's recency, half_life_s) is added "
        "with this weight to one's own unit direction. 0 turns social signals off (follow "
        "sets are still kept).",
    )
    max_follows: int = Field(
        200, ge=1, **flat("max_follows"),
        description="Followees kept per user (llmrec.follows); a follow past it evicts the "
        "oldest follow. Bounds the profiles read per ranking.",
    )


class ShadowSettings(Section):
    """Shadow evaluation: a published model ranked beside the live one."""

    flat_prefix: ClassVar[str] = "shadow_"

    enabled: bool = Field(
        True,
        description="Workers rank with the model published in shadow (llmrec.models record "
        "with shadow: true) beside the live one and score both online; false: the shadow is "
        "not run here (no extra ranking, no Redis writes).",
    )
    ttl_s: int = Field(
        7 * 86_400, ge=1,
        description="Seconds a user's previous top-k of both models (u:{uid}:sh) is kept "
        "without a new event of theirs; each batch overwrites it.",
    )
    promote_online: bool = Field(
        False,
        description="Promotion also requires an online win: a model replacing a live one must "
        "have run in shadow against it for shadow_min_events paired events, with the lower "
        "bound of the shadow_confidence interval of (shadow - live) hit rate@k above 0. "
        "force overrides it.",
    )
    min_events: int = Field(
        500, ge=1,
        description="Paired online events a shadow needs before it can win (see "
        "shadow_promote_online).",
    )
    confidence: float = Field(
        0.95, gt=0, lt=1,
        description="Confidence level of the online intervals: Wilson per model, Newcombe's "
        "paired interval for the difference (promotion and `llmrec-stream models compare`).",
    )


class ServeSettings(Section):
    """Pull API: `llmrec-stream serve`."""

    flat_prefix: ClassVar[str] = "api_"

    host: str = Field("127.0.0.1", description="Address `llmrec-stream serve` binds.")
    port: int = Field(8000, ge=0, le=65535, description="Port `llmrec-stream serve` binds.")
    token: SecretStr | None = Field(
        None,
        description="Bearer token the pull API requires on every /v1 call; unset means no "
        "authentication (bind to loopback only then).",
    )
    produce_timeout_s: float = Field(
        10.0, gt=0, description="How long POST /v1/events waits for the broker's acks=all."
    )


class TrainerSettings(Section):
    """Trainer input from the event log."""

    flat_prefix: ClassVar[str] = "trainer_"

    collapse_window_ms: int = Field(
        60_000,
        ge=0,
        description="Events of one user on one item closer than this (ms, to the first of the "
        "run) are one interaction for the trainer, typed by the strongest event (purchase > "
        "comment > click): a replayed review is a comment and a purchase at once. 0: keep all.",
    )
