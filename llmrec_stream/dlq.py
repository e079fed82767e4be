"""Dead letters: a rejected record, its reason and coordinates, in body and headers.

Headers follow Kafka Connect's ``__connect.errors.*`` convention so existing tooling can read
them; the JSON body is ``schemas/dead_letter.json`` version 2.

A dead letter always fits. The rejected record may be as large as the broker accepts (about
1 MiB), and its base64 copy would not fit in one producer request: a poison record would then
kill the worker, which restarts, reads the same record and dies again. So a dead letter keeps
the record's coordinates, the sha256 and total length of its value and key, and only a bounded
prefix of each (``value_prefix_bytes``, and `KEY_PREFIX_BYTES`); ``truncated`` (body) and
``llmrec.truncated`` (header) say whether anything was cut. The whole record is still in the
source topic at those coordinates, and the digest identifies it.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass

from llmrec_stream.events.codec import Rejected, dumps

SCHEMA_VERSION = 2
DEFAULT_VALUE_PREFIX_BYTES = 4096
#: A rejected key is kept up to this many bytes (it is also the dead letter's own Kafka key).
KEY_PREFIX_BYTES = 512
#: Longest ``detail`` kept, in characters, and the header's copy of it.
DETAIL_CHARS = 2000
HEADER_DETAIL_CHARS = 500
#: Room for everything but the value prefix: fields, the escaped detail (≤ 6 bytes a character
#: once JSON-escaped), headers, the key prefix and base64 of it, and the record batch's own
#: framing. `DeadLetterFormat.letter` measures every record and falls back to the minimal form
#: if one ever exceeds its budget anyway.
RESERVE_BYTES = 32 * 1024


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record for ``llmrec.dlq``."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        """Bytes of key, value and headers: what the producer's request limit is measured on,
        less the batch framing that `RESERVE_BYTES` covers."""
        headers = sum(len(k.encode()) + len(v) for k, v in self.headers)
        return len(self.key or b"") + len(self.value) + headers


def max_value_prefix(max_record_bytes: int) -> int:
    """The largest value prefix whose dead letter fits in ``max_record_bytes`` (base64 grows
    it by 4/3)."""
    return max(0, (max_record_bytes - RESERVE_BYTES) * 3 // 4)


def check_prefix(value_prefix_bytes: int, max_record_bytes: int) -> None:
    """Refuse a prefix setting whose dead letters could exceed the producer's request size."""
    limit = max_value_prefix(max_record_bytes)
    if not 0 <= value_prefix_bytes <= limit:
        raise ValueError(
            f"LLMREC_DLQ_VALUE_PREFIX_BYTES={value_prefix_bytes} cannot fit a dead letter in the "
            f"producer's max request size of {max_record_bytes} bytes: use 0..{limit}"
        )


class DeadLetterFormat:
    """Builds dead letters for one worker, each within ``max_record_bytes``."""

    def __init__(
        self,
        worker_id: str,
        value_prefix_bytes: int = DEFAULT_VALUE_PREFIX_BYTES,
        max_record_bytes: int = 1_000_000,
    ) -> None:
        check_prefix(value_prefix_bytes, max_record_bytes)
        self.worker_id = worker_id[:256]
        self.value_prefix_bytes = value_prefix_bytes
        self.max_record_bytes = max_record_bytes

    def letter(self, rejected: Rejected) -> DeadLetter:
        """The full dead letter: reason, detail, coordinates, digests and bounded prefixes."""
        full = self._build(rejected, self.value_prefix_bytes, DETAIL_CHARS)
        if full.size + RESERVE_BYTES // 4 <= self.max_record_bytes:
            return full
        return self.minimal(rejected)  # unreachable with a checked prefix; a guard all the same

    def minimal(self, rejected: Rejected) -> DeadLetter:
        """Coordinates, digests and lengths only: a few hundred bytes. What a retry sends once
        the broker refused the full letter (its topic may have a smaller ``max.message.bytes``)."""
        return self._build(rejected, 0, 0)

    def _build(self, rejected: Rejected, value_prefix: int, detail_chars: int) -> DeadLetter:
        src = rejected.source
        key, value = rejected.key, rejected.value
        key_kept = None if key is None else key[:KEY_PREFIX_BYTES]
        value_kept = None if value is None else value[:value_prefix]
        truncated = (key is not None and len(key) > len(key_kept or b"")) or (
            value is not None and len(value) > len(value_kept or b"")
        )
        detail = _text(rejected.detail[:detail_chars])
        exception = _text(rejected.exception[:200])
        value_digest = _sha256(value)
        body = {
            "schema_version": SCHEMA_VERSION,
            "reason": rejected.reason,
            "detail": detail,
            "source_topic": src.topic,
            "source_partition": src.partition,
            "source_offset": src.offset,
            "exception": exception,
            "key": None if key_kept is None else base64.b64encode(key_kept).decode(),
            "key_sha256": _sha256(key),
            "key_length": None if key is None else len(key),
            "value": None if value_kept is None else base64.b64encode(value_kept).decode(),
            "value_sha256": value_digest,
            "value_length": None if value is None else len(value),
            "truncated": truncated,
            "worker_id": self.worker_id,
            "ts": int(time.time() * 1000),
        }
        headers = [
            ("__connect.errors.topic", src.topic.encode()),
            ("__connect.errors.partition", str(src.partition).encode()),
            ("__connect.errors.offset", str(src.offset).encode()),
            ("__connect.errors.exception.class.name", exception.encode()),
            ("__connect.errors.exception.message", detail[:HEADER_DETAIL_CHARS].encode()),
            ("llmrec.reason", rejected.reason.encode()),
            ("llmrec.truncated", b"true" if truncated else b"false"),
        ]
        if value is not None and value_digest is not None:
            headers.append(("llmrec.value.sha256", value_digest.encode()))
            headers.append(("llmrec.value.length", str(len(value)).encode()))
        return DeadLetter(key_kept, dumps(body), headers)


def dead_letter(rejected: Rejected, worker_id: str) -> DeadLetter:
    """The dead letter for one rejected record, with the default prefix and request size."""
    return DeadLetterFormat(worker_id).letter(rejected)


def _sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _text(s: str) -> str:
    """Encodable as UTF-8 whatever the input held (a lone surrogate from a ``\\ud800`` escape
    in a rejected JSON document would otherwise make the dead letter itself fail)."""
    return s.encode("utf-8", "backslashreplace").decode("utf-8")
