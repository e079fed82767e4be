"""Log formats: text for people, one JSON object per line for log pipelines
(``LLMREC_LOG_FORMAT=json``, formatted by python-json-logger).

The worker's logging is set up by Faust (mode's ``setup_logging``, from the app's
``logging_config``); the other commands set it up in ``cli.main``. Both take their format from
here. What a line says is the same in both formats, and it never carries user text: events
are named by their coordinates (topic, partition, offset), dead letters by their reason.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

from llmrec_stream.config import MetricsSettings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: The record attributes each JSON line carries (python-json-logger reads them from ``fmt``).
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"


def _json_formatter() -> dict[str, Any]:
    return {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": JSON_FIELDS,
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    }


def faust_logging_config(metrics: MetricsSettings) -> dict[str, Any] | None:
    """The Faust app's ``logging_config``: None keeps Faust's own (text); for JSON, its
    ``default`` handler writes JSON lines to stdout instead (``merge``: mode keeps its
    levels and root setup, only the handler is replaced)."""
    if metrics.log_format != "json":
        return None
    return {
        "version": 1,
        "merge": True,
        "formatters": {"json": _json_formatter()},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
        },
    }


def configure(level: int, log_format: str) -> None:
    """Root logging of a CLI command (the worker's is Faust's: `faust_logging_config`)."""
    if log_format != "json":
        logging.basicConfig(level=level, format=TEXT_FORMAT)
        return
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": _json_formatter()},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"level": level, "handlers": ["default"]},
    })
