"""The item catalog: vectors written once to Redis, mirrored in memory by every worker.

Items arrive partitioned (each worker encodes only its share of ``llmrec.items``), but every
worker must score against all of them. So the worker that encodes an item writes its vector
to one Redis hash and appends the id to a change log (a Redis stream); every worker applies
the log to its in-memory index, and looks up a missed id directly before giving up on it.

Each item's meta holds a digest of what its vector was made from (`content_digest`), so a
starting worker can tell which items of ``llmrec.items`` the catalog lacks or holds in an older
version (`stale`). The catalog also records which encoder made its vectors (`claim_encoder`):
vectors of two encoders are not comparable, and one deployment has one encoder.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

from llmrec_stream.events.models import Item
from llmrec_stream.retrieval.protocol import ItemIndex
from llmrec_stream.retrieval.rows import last_of_each

# One hash tag: the catalog lives in one slot, so its pipeline works on Redis Cluster too.
VECTORS = "{catalog}:vec"
META = "{catalog}:meta"
LOG = "{catalog}:log"
#: The identity of the encoder that made every vector of the catalog (`claim_encoder`).
ENCODER = "{catalog}:encoder"
LOG_MAXLEN = 1_000_000
#: Items put into the index per step, the event loop free between steps. An HNSW insert
#: into a 50,000-item graph took 0.8-1.2 ms an item (one thread): 2,500 items at once stalled
#: the loop (fetches, heartbeats, the next micro-batch) for 1.9-2.9 s, a slice of 32 for at
#: most 38 ms.
UPSERT_SLICE = 32
#: Ids per HMGET when checking which items are stale (one round trip each, bounded replies).
STALE_CHUNK = 1000


class EncoderMismatch(RuntimeError):
    """This worker's encoder is not the one the catalog's vectors were made with."""


class Catalog:
    """In-memory mirror of the item vectors in Redis, kept current from the change log."""

    def __init__(self, client: aioredis.Redis, index: ItemIndex) -> None:
        self.client = client
        self.index = index
        self._log_id = "0-0"

    @property
    def dim(self) -> int:
        return self.index.dim

    async def publish(self, items: Sequence[Item], vectors: npt.NDArray[np.float32]) -> None:
        """Store encoded items in Redis and in this worker's index (one round trip)."""
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        ids = [it.item_id for it in items]
        blobs = {i: v.astype("<f4").tobytes() for i, v in zip(ids, vectors, strict=True)}
        pipe.hset(VECTORS, mapping=blobs)  # type: ignore[arg-type]
        pipe.hset(META, mapping={it.item_id: json.dumps(_meta(it)) for it in items})
        pipe.xadd(LOG, {"ids": "\n".join(ids)}, maxlen=LOG_MAXLEN, approximate=True)
        await pipe.execute()
        await self._upsert(ids, vectors.astype(np.float32))

    async def bootstrap(self) -> int:
        """Load the whole catalog (start-up): scan the vectors, then follow the log from here.

        The log position is taken first, so an item written during the scan is applied again
        by the next ``refresh`` rather than missed. The bulk load runs in a thread: for a
        large catalog it builds an HNSW graph (seconds), and the event loop must go on
        meanwhile; nothing else uses the index before this returns.
        """
        last: Any = await self.client.xrevrange(LOG, count=1)
        if last:
            self._log_id = _text(last[0][0])
        ids: list[str] = []
        vecs: list[npt.NDArray[np.float32]] = []
        async for item_id, blob in self.client.hscan_iter(VECTORS, count=5000):
            ids.append(_text(item_id))
            vecs.append(np.frombuffer(blob, dtype="<f4"))
        if ids:
            await asyncio.to_thread(self.index.upsert, ids, np.stack(vecs))
        return len(ids)

    async def claim_encoder(self, identity: str) -> None:
        """Record ``identity`` as the catalog's encoder, or check that it is the recorded one.

        The first worker of an empty deployment records its encoder (SET NX and GET in one
        MULTI: of several workers starting at once, one wins and the others compare with
        it). A catalog written before identities were recorded is accepted when its vectors
        have this encoder's dimension. Raises `EncoderMismatch` naming both encoders.
        """
        held: Any = await self.client.get(ENCODER)
        if held is None:
            sample: Any = await self.client.hrandfield(VECTORS, 1, withvalues=True)
            if sample and len(sample[1]) != 4 * self.dim:
                raise EncoderMismatch(
                    f"the catalog in Redis holds {len(sample[1]) // 4}-dimensional vectors "
                    f"and records no encoder; this worker's encoder is {identity!r} "
                    f"({self.dim} dimensions). Start the worker with the catalog's encoder, "
                    "or empty the catalog and profiles to change encoders."
                )
            pipe = self.client.pipeline(transaction=True)
            pipe.set(ENCODER, identity, nx=True)
            pipe.get(ENCODER)
            _, held = await pipe.execute()
        if _text(held) != identity:
            raise EncoderMismatch(
                f"the catalog in Redis was encoded with {_text(held)!r}, this worker's encoder "
                f"is {identity!r}: vectors of two encoders must not mix. Start the worker "
                "with the catalog's encoder (LLMREC_ENCODER_DIR, LLMREC_ENCODER_PRECISION), "
                "or empty the catalog and profiles to change encoders."
            )

    async def stale(self, items: Sequence[Item]) -> list[Item]:
        """The items whose vector the catalog lacks, or made from other content.

        Reads only the meta (the vector hash is written before it, in the same pipeline):
        an item whose meta carries no digest (written by an older version) counts as stale.
        """
        out: list[Item] = []
        for at in range(0, len(items), STALE_CHUNK):
            chunk = items[at : at + STALE_CHUNK]
            raw: list[Any] = await self.client.hmget(META, [it.item_id for it in chunk])
            out.extend(it for it, r in zip(chunk, raw, strict=True)
                       if r is None or _digest_of(r) != content_digest(it))
        return out

    async def refresh(self) -> int:
        """Apply the change log since the last call; returns how many ids were updated.

        The log position moves only once the vectors are in the index: if Redis fails
        between the read of the log and the load, the next call reads the same entries
        again instead of skipping those items for good.
        """
        entries: Any = await self.client.xread({LOG: self._log_id}, count=10_000)
        ids: list[str] = []
        last = self._log_id
        for _stream, messages in entries:
            for msg_id, fields in messages:
                last = _text(msg_id)
                ids.extend(fields[b"ids"].decode("utf-8").split("\n"))
        await self.load(list(dict.fromkeys(ids)))
        self._log_id = last
        return len(ids)

    async def load(self, ids: Sequence[str]) -> list[str]:
        """Fetch these ids from Redis into the index; returns the ids Redis knows."""
        if not ids:
            return []
        blobs: list[Any] = await self.client.hmget(VECTORS, list(ids))
        found = [(i, b) for i, b in zip(ids, blobs, strict=True) if b is not None]
        if found:
            vecs = np.stack([np.frombuffer(b, dtype="<f4") for _, b in found])
            await self._upsert([i for i, _ in found], vecs)
        return [i for i, _ in found]

    async def _upsert(self, ids: Sequence[str], vectors: npt.NDArray[np.float32]) -> None:
        """Into the index `UPSERT_SLICE` items at a time, the event loop free between slices.

        Not a thread: searches run on the loop, and an HNSW graph must not be searched while
        it is inserted into. A search between two slices sees the items inserted so far.
        Items whose vector the index holds already are skipped: the change log brings back
        every item this worker published itself, and in an HNSW graph a second insert of the
        same vector would cost a new row and leave a tombstone.
        """
        positions = list(last_of_each(ids).values())  # a repeated id: the last vector wins
        for at in range(0, len(positions), UPSERT_SLICE):
            if at:
                await asyncio.sleep(0)
            rows = [
                k
                for k in positions[at : at + UPSERT_SLICE]
                if not _same(self.index.vector(ids[k]), vectors[k])
            ]
            if rows:
                self.index.upsert([ids[k] for k in rows], vectors[rows])

    async def resolve(self, ids: Sequence[str]) -> set[str]:
        """Make sure these ids are in memory; returns those that exist nowhere."""
        missing = [i for i in dict.fromkeys(ids) if i not in self.index]
        if not missing:
            return set()
        return set(missing) - set(await self.load(missing))

    async def meta(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Titles and categories for display (the demo, ``recs``)."""
        if not ids:
            return {}
        raw = await self.client.hmget(META, list(ids))
        return {i: json.loads(r) for i, r in zip(ids, raw, strict=True) if r is not None}


def _same(held: npt.NDArray[np.float32] | None, vector: npt.NDArray[np.float32]) -> bool:
    return held is not None and np.array_equal(held, vector)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def content_digest(item: Item) -> str:
    """What the catalog stores of an item (the encoded text, title, category), hashed."""
    content = json.dumps([item.text(), item.title, item.category], ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


def _digest_of(raw: bytes | str) -> str | None:
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    return meta.get("digest") if isinstance(meta, dict) else None


def _meta(item: Item) -> dict[str, Any]:
    return {"title": item.title, "category": item.category, "digest": content_digest(item)}
