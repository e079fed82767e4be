"""One settings tree: every knob has a type, a default, a section and an ``LLMREC_*``
environment variable.

``Settings`` holds one section per concern (`settings.py`); the sections live beside it by
area (connections, encoder, stream, ranking, features). The reference table in
``docs/settings.md`` is generated from the tree (`docs.py`: ``python -m llmrec_stream.config
--markdown``), so the docs cannot drift from the code. This package imports nothing else of
the library: every folder may take its section from here.

A new setting is a field of the section it belongs to (or of a new section, added to
``Settings``). Its variable is ``LLMREC_`` + the section's ``flat_prefix`` + the field name,
or the name ``flat("...")`` gives it; names must stay unique (checked at import). Then
regenerate ``docs/settings.md``.
"""

from __future__ import annotations

from llmrec_stream.config.base import Section, redact_url
from llmrec_stream.config.connections import KafkaSettings, RedisSettings
from llmrec_stream.config.docs import SETTINGS_DOC, settings_markdown
from llmrec_stream.config.encoder import EncoderSettings, TextSettings
from llmrec_stream.config.features import (
    ServeSettings,
    ShadowSettings,
    SocialSettings,
    SponsoredSettings,
    TrainerSettings,
)
from llmrec_stream.config.ranking import (
    FusionWeights,
    ModelSettings,
    ProfileSettings,
    RankingSettings,
    RetrievalSettings,
)
from llmrec_stream.config.settings import FLAT, Settings
from llmrec_stream.config.stream import (
    CatalogSettings,
    DlqSettings,
    Limits,
    MetricsSettings,
    StreamSettings,
)

__all__ = [
    "FLAT",
    "SETTINGS_DOC",
    "CatalogSettings",
    "DlqSettings",
    "EncoderSettings",
    "FusionWeights",
    "KafkaSettings",
    "Limits",
    "MetricsSettings",
    "ModelSettings",
    "ProfileSettings",
    "RankingSettings",
    "RedisSettings",
    "RetrievalSettings",
    "Section",
    "ServeSettings",
    "Settings",
    "ShadowSettings",
    "SocialSettings",
    "SponsoredSettings",
    "StreamSettings",
    "TextSettings",
    "TrainerSettings",
    "redact_url",
    "settings_markdown",
]
