"""``llmrec-stream serve``: the pull API (FastAPI + uvicorn, the ``serve`` extra)."""
