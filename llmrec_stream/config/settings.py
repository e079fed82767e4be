"""The settings tree: one section per concern, each read from its ``LLMREC_*`` variables.

Each folder of the library takes only its section (the profile store the ``fusion`` and
``profiles`` sections, the retrieval index ``retrieval``, the security helpers ``kafka`` or
``redis``); the assembly (`worker.build_pipeline`, the CLI) holds the whole tree.

Deployments keep their environment: every setting is still read from the variable the flat
class it replaced read (``LLMREC_KAFKA_BOOTSTRAP`` → ``kafka.bootstrap``, see
`Section.flat_names`), and ``Settings(kafka_bootstrap=...)`` with those flat names still
works: a convenience that routes each keyword to its section. An unknown keyword, flat or
not, is an error.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_core import InitErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from llmrec_stream.config.base import ENV_PREFIX, REDACTED, Section, redact_url
from llmrec_stream.config.connections import KafkaSettings, RedisSettings
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
from llmrec_stream.config.stream import (
    CatalogSettings,
    DlqSettings,
    Limits,
    MetricsSettings,
    StreamSettings,
)


class Settings(BaseSettings):
    """Runtime configuration of workers, the demo and the CLI, by section."""

    model_config = SettingsConfigDict(extra="forbid", case_sensitive=False)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    fusion: FusionWeights = Field(default_factory=FusionWeights)
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ranking: RankingSettings = Field(default_factory=RankingSettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    limits: Limits = Field(default_factory=Limits)
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    dlq: DlqSettings = Field(default_factory=DlqSettings)
    sponsored: SponsoredSettings = Field(default_factory=SponsoredSettings)
    social: SocialSettings = Field(default_factory=SocialSettings)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)
    text: TextSettings = Field(default_factory=TextSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    trainer: TrainerSettings = Field(default_factory=TrainerSettings)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**_nest(values))
        except ValidationError as exc:
            raise _flat_errors(exc) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # keywords first, then LLMREC_<flat name>; no .env or secrets directory is configured
        return init_settings, FlatEnvSource(settings_cls)

    def as_dict(self) -> dict[str, Any]:
        """Every setting by its flat name (``LLMREC_<NAME>`` less the prefix), secrets and the
        Redis URL's password redacted: safe to log or print."""
        out: dict[str, Any] = {}
        for flat_name, (section, name) in FLAT.items():
            value = getattr(getattr(self, section), name)
            if isinstance(value, SecretStr):
                value = REDACTED
            out[flat_name] = value
        out["redis_url"] = redact_url(self.redis.url)
        return out


def section_types() -> dict[str, type[Section]]:
    """Section name → its class, in the tree's order."""
    out: dict[str, type[Section]] = {}
    for name, field in Settings.model_fields.items():
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, Section)):
            raise TypeError(f"Settings.{name} is not a section")
        out[name] = field.annotation
    return out


def _flat_table() -> dict[str, tuple[str, str]]:
    table: dict[str, tuple[str, str]] = {}
    for section, cls in section_types().items():
        for name, flat_name in cls.flat_names().items():
            if flat_name in table or flat_name in Settings.model_fields:
                raise RuntimeError(f"flat setting name {flat_name!r} is taken twice")
            table[flat_name] = (section, name)
    return table


#: Flat name → (section, field): the table of ``LLMREC_*`` variables and flat keywords.
FLAT: dict[str, tuple[str, str]] = _flat_table()
_FLAT_OF = {path: flat_name for flat_name, path in FLAT.items()}


class FlatEnvSource(EnvSettingsSource):
    """Reads ``LLMREC_<flat name>`` (case-insensitive) into its section, parsing each value as
    pydantic-settings parses a flat field's (JSON for a dict)."""

    def __call__(self) -> dict[str, Any]:
        types = section_types()
        out: dict[str, dict[str, Any]] = {}
        for flat_name, (section, name) in FLAT.items():
            raw = self.env_vars.get(f"{ENV_PREFIX}{flat_name}".lower())
            if raw is None:
                continue
            field = types[section].model_fields[name]
            try:
                value = self.prepare_field_value(name, field, raw, self.field_is_complex(field))
            except ValueError as exc:
                raise SettingsError(
                    f"error parsing {ENV_PREFIX}{flat_name.upper()}: {exc}"
                ) from exc
            out.setdefault(section, {})[name] = value
        return out


def _nest(values: dict[str, Any]) -> dict[str, Any]:
    """Keywords with flat names routed into their sections (a section given whole as a model
    or a dict is kept, a flat keyword for one of its fields added to it)."""
    out: dict[str, Any] = {}
    flat_values: list[tuple[str, str, str, Any]] = []
    for key, value in values.items():
        if key in FLAT:
            flat_values.append((key, *FLAT[key], value))
        else:
            out[key] = value  # a section, a pydantic-settings option, or an error later
    for flat_name, section, name, value in flat_values:
        given = out.get(section, {})
        if not isinstance(given, Section | dict):
            continue  # not a section: pydantic reports it
        explicit = given.model_fields_set if isinstance(given, Section) else given
        if name in explicit:
            raise TypeError(f"Settings() got {flat_name}= and {section}.{name}: give one")
        if isinstance(given, Section):  # whole, as given: its defaults too, not the environment
            given = {n: getattr(given, n) for n in type(given).model_fields}
        out[section] = {**given, name: value}
    return out


def _flat_errors(exc: ValidationError) -> ValidationError:
    """The same errors, located by flat name (``weight_click``, not ``fusion.click``): the
    name of the variable or keyword the operator set."""
    details: list[InitErrorDetails] = []
    for error in exc.errors():
        loc = error["loc"]
        flat_name = _FLAT_OF.get((str(loc[0]), str(loc[1]))) if len(loc) >= 2 else None
        detail: InitErrorDetails = {
            "type": error["type"],
            "loc": (flat_name, *loc[2:]) if flat_name else loc,
            "input": error["input"],
        }
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    try:
        return ValidationError.from_exception_data(exc.title, details)
    except KeyError:  # an error type pydantic-core cannot rebuild: keep the original
        return exc
