"""What every settings section shares: its flat names, and URL redaction.

A section is a small pydantic model; ``Settings`` holds one of each. Operators know each
setting by its *flat name*, the ``LLMREC_<NAME>`` environment variable of the one flat class
this tree replaced: ``kafka.bootstrap`` is still ``LLMREC_KAFKA_BOOTSTRAP``,
``fusion.click`` is still ``LLMREC_WEIGHT_CLICK``. The flat name is the section's
``flat_prefix`` plus the field name, unless the field says otherwise with ``flat("...")``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict

ENV_PREFIX = "LLMREC_"
REDACTED = "**********"


def flat(name: str) -> dict[str, Any]:
    """``Field(..., **flat("weight_click"))``: the field's flat name, when the section's
    prefix does not spell it (deployments set ``LLMREC_WEIGHT_CLICK``, not ``..._CLICK``)."""
    return {"json_schema_extra": {"flat_name": name}}


class Section(BaseModel):
    """One section of the settings tree; unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid")

    #: The section's flat names start with this (``"kafka_"``: ``bootstrap`` is kafka_bootstrap).
    flat_prefix: ClassVar[str] = ""

    @classmethod
    def flat_names(cls) -> dict[str, str]:
        """Field name → its flat name (``LLMREC_`` + the upper-cased flat name is its variable)."""
        out = {}
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra
            given = extra.get("flat_name") if isinstance(extra, dict) else None
            out[name] = str(given) if given else cls.flat_prefix + name
        return out


def redact_url(url: str) -> str:
    """The URL with any password (user-info or ``?password=``) replaced, for logs and output."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparseable URL, redacted>"
    netloc = parts.netloc
    if password is not None:
        user = f"{parts.username}:" if parts.username else ":"
        netloc = f"{user}{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = [
        (k, REDACTED if k.lower() == "password" else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))
