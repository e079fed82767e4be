"""The pull API: recommendations from the Redis cache, events into Kafka, behind a bearer token.

Reads never touch Kafka: a recommendation is the worker's latest record for the user, as the
cache in Redis holds it (``profiles.recs``), with its age. Writes go through the same
validation the workers apply (`client.EventProducer`, the codec and JSON Schemas): a bad
event is a 422 naming the dead-letter reason it would have had, never a record on the topic.
A 202 means the broker acknowledged the record with ``acks=all``.

``/healthz`` (liveness: the process answers) and ``/readyz`` (readiness: Redis and Kafka
answer within ``health_check_timeout_s``) are outside ``/v1`` and need no token, like the
worker's (`llmrec_stream.health`): the image's HEALTHCHECK and compose's probe call them. A
failed check is named by its exception class, never its message (which may hold an address).
"""

# No ``from __future__ import annotations``: FastAPI resolves the dependency annotations of
# the handlers defined inside `create_app` at run time, and names local to it (``bearer``)
# would not resolve from strings.
import asyncio
import importlib.metadata
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from llmrec_stream.client import DeliveryFailed, EventProducer, InvalidEvent, Recommendations
from llmrec_stream.config import Settings
from llmrec_stream.profiles.store import recs_key
from llmrec_stream.redis_conn import RETRYABLE, async_client


class RecommendationsOut(BaseModel):
    """A user's latest recommendations."""

    user_id: str
    items: list[str] = Field(description="Item ids, best first.")
    scores: list[float] = Field(description="The ranker's score of each item.")
    model_version: str = Field(description="The ranking model that produced them.")
    trigger_ts: int = Field(description="Time (ms) of the event that drove them.")
    published_ts: int = Field(description="When the worker published them (ms).")
    age_s: float = Field(description="Seconds since they were published.")
    reasons: list[Any] | None = Field(None, description="Per-item reasons, when recorded.")


class EventIn(BaseModel):
    """One event for a topic; ``value`` follows that topic's JSON Schema (``schemas/``)."""

    topic: str = Field(
        description="clicks, comments, purchases, users, items, erase (or the llmrec.* name)",
        examples=["clicks"],
    )
    value: dict[str, Any] = Field(
        examples=[
            {
                "schema_version": 1,
                "event_id": "e-1",
                "ts": 1_700_000_000_000,
                "user_id": "user-1",
                "item_id": "item-9",
            }
        ]
    )


class Accepted(BaseModel):
    """Where the broker stored the event."""

    topic: str
    partition: int
    offset: int
    key: str
    schema_id: int | None = Field(None, description="Set when the record was framed.")


class Problem(BaseModel):
    detail: str | dict[str, str]


def _version() -> str:
    try:
        return importlib.metadata.version("llmrec-stream")
    except importlib.metadata.PackageNotFoundError:  # a bare source tree
        return "0+unknown"


def create_app(
    settings: Settings, producer_factory: Callable[[Settings], EventProducer] | None = None
) -> FastAPI:
    """The application; ``producer_factory`` builds its event producer at start-up."""
    make_producer = producer_factory or EventProducer.from_settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = async_client(settings.redis)
        app.state.producer = make_producer(settings)
        try:
            yield
        finally:
            await asyncio.to_thread(app.state.producer.close)
            await app.state.redis.aclose()

    app = FastAPI(
        title="llmrec-stream pull API",
        version=_version(),
        description="Recommendations from the Redis cache; events into Kafka, validated with "
        "the workers' schemas.",
        lifespan=lifespan,
    )
    bearer = HTTPBearer(auto_error=False)
    token = settings.serve.token.get_secret_value() if settings.serve.token is not None else None

    async def authorized(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if token is None:
            return
        given = creds.credentials if creds is not None else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "a valid bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )

    auth = [Depends(authorized)]
    timeout = settings.metrics.health_check_timeout_s

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: 200 while the process serves HTTP."""
        return {"status": "alive"}

    @app.get("/readyz", tags=["health"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: 200 once Redis and Kafka answer, else 503 naming the failed check."""
        checks: dict[str, str] = {}
        probes = {
            "redis": lambda: asyncio.wait_for(app.state.redis.ping(), timeout),
            "kafka": lambda: asyncio.to_thread(app.state.producer.reachable, timeout),
        }
        for name, probe in probes.items():
            try:
                await probe()
            except Exception as exc:  # any failure is "not ready", named by its class only
                checks[name] = type(exc).__name__
            else:
                checks[name] = "ok"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE,
        )

    @app.get(
        "/v1/users/{user_id}/recommendations",
        response_model=RecommendationsOut,
        responses={404: {"model": Problem}, 401: {"model": Problem}, 503: {"model": Problem}},
        dependencies=auth,
    )
    async def recommendations(user_id: str) -> RecommendationsOut:
        """The user's latest recommendations from the cache, with their model and age."""
        try:
            raw: Any = await app.state.redis.get(recs_key(user_id))
        except RETRYABLE as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "redis unavailable") from exc
        if raw is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no recommendations for {user_id!r}")
        rec = Recommendations.from_cache(user_id, bytes(raw))
        return RecommendationsOut(**{f: getattr(rec, f) for f in RecommendationsOut.model_fields})

    @app.post(
        "/v1/events",
        status_code=status.HTTP_202_ACCEPTED,
        response_model=Accepted,
        responses={422: {"model": Problem}, 401: {"model": Problem}, 503: {"model": Problem}},
        dependencies=auth,
    )
    async def post_event(event: EventIn) -> Accepted:
        """Validate one event with the workers' schemas and produce it (``acks=all``)."""
        try:
            delivery = await asyncio.to_thread(app.state.producer.send, event.topic, event.value)
        except InvalidEvent as exc:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                {"reason": exc.reason, "detail": exc.detail},
            ) from exc
        except ValueError as exc:  # an unknown topic
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
        except DeliveryFailed as exc:
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
        return Accepted(
            topic=delivery.topic,
            partition=delivery.partition,
            offset=delivery.offset,
            key=delivery.key,
            schema_id=delivery.schema_id,
        )

    return app
