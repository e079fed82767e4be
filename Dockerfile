# syntax=docker/dockerfile:1
# The worker image. The encoder is exported in a throwaway stage that has torch; the runtime
# image gets only the ONNX artifact and onnxruntime (extra [cpu]), never torch.
#
#   docker build -t llmrec-stream .
#   docker build --build-arg TORCH_INDEX_URL=https://pypi.org/simple -t llmrec-stream .

ARG PYTHON_IMAGE=python:3.11-slim

# --- the sources, shared by every stage --------------------------------------------------
FROM ${PYTHON_IMAGE} AS source
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY llmrec_stream ./llmrec_stream
COPY streams ./streams
COPY schemas ./schemas
RUN useradd --system --uid 10001 --home-dir /app --create-home llmrec

# --- stage 1: export the text encoder to ONNX (torch side) ---------------------------------
FROM source AS export
# torch from the CPU wheel index by default: the CUDA wheels are gigabytes and exporting
# needs no GPU.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" ".[export]" \
    && llmrec-stream export-encoder --out /opt/encoder

# --- stage 2: the trainer (torch side; `--target trainer`) -----------------------------------
FROM source AS trainer
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" ".[cpu,eval]" && rm -rf /src/build
COPY --from=export /opt/encoder /opt/encoder
USER llmrec
WORKDIR /app
ENV LLMREC_ENCODER_DIR=/opt/encoder
CMD ["llmrec-stream", "train", "--out", "/models", "--every", "60", "--quiet"]

# --- stage 3: the pull API (`--target serve`; compose's `serve`) -------------------------------
# FastAPI and uvicorn (extra [serve]); no encoder and no onnxruntime: it reads the Redis cache
# and produces validated events.
FROM source AS serve
RUN pip install ".[serve]" && rm -rf /src/build
USER llmrec
WORKDIR /app
ENV LLMREC_API_HOST=0.0.0.0 \
    LLMREC_API_PORT=8000
EXPOSE 8000
# Liveness: /healthz answers while the process serves (compose adds /readyz, readiness).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['LLMREC_API_PORT']}/healthz\", timeout=4)"]
CMD ["llmrec-stream", "serve"]

# --- stage 4: the runtime (onnxruntime side; the default target, so the last stage) ----------
FROM source AS runtime
RUN pip install ".[cpu]" && rm -rf /src/build
COPY --from=export /opt/encoder /opt/encoder

USER llmrec
WORKDIR /app
ENV LLMREC_ENCODER_DIR=/opt/encoder \
    LLMREC_METRICS_PORT=9100
EXPOSE 9100
# Liveness: /healthz answers while the worker process serves (compose adds /readyz, readiness).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['LLMREC_METRICS_PORT']}/healthz\", timeout=4)"]
CMD ["llmrec-stream", "worker"]
