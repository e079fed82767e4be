"""The ``serve`` command, loaded lazily by the CLI (`cli.TOOLING`): the runtime install, which
has no FastAPI, still starts."""

from __future__ import annotations

import click

from llmrec_stream.config import Settings


@click.command()
@click.option("--host", default=None, help="Address to bind (default: LLMREC_API_HOST).")
@click.option("--port", type=int, default=None, help="Port to bind (default: LLMREC_API_PORT).")
def serve(host: str | None, port: int | None) -> None:
    """Serve the pull API: recommendations from Redis, events into Kafka.

    The OpenAPI document is at /openapi.json, the interactive docs at /docs.
    """
    import uvicorn

    from llmrec_stream.serve.app import create_app

    settings = Settings()
    if settings.serve.token is None and (host or settings.serve.host) not in ("127.0.0.1", "::1"):
        click.echo("warning: no LLMREC_API_TOKEN and not bound to loopback", err=True)
    uvicorn.run(
        create_app(settings),
        host=host or settings.serve.host,
        port=settings.serve.port if port is None else port,
        log_level="info",
    )
