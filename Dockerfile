# syntax=docker/dockerfile:1
# Two targets: `cpu` (default, last stage) and `cuda` (docker build --target cuda .).
# Both install with scripts/install.sh, the same script a local install runs: the runtime set,
# which serves with ONNX Runtime and has no torch. `--build-arg EXTRAS=torch` adds PyTorch for
# BACKEND=torchscript (the CPU build in `cpu`, CUDA 12.8 in `cuda`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

# ---------------------------------------------------------------- CUDA (GPU hosts)
FROM ${CUDA_IMAGE} AS cuda
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends software-properties-common \
 && add-apt-repository -y ppa:deadsnakes/ppa \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN useradd --create-home --uid 10001 app
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY app ./app
ARG EXTRAS=""
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# onnxruntime-gpu brings the CUDA provider; torch (only with EXTRAS=torch) the CUDA build.
RUN ORT_GPU=1 TORCH_INDEX_URL=${TORCH_INDEX_URL} bash scripts/install.sh "${EXTRAS}" && rm -rf /root/.cache
COPY models ./models
ENV MODEL_DIR=/srv/models HOST=0.0.0.0 PORT=8000 PROBE_PORT=8001 DEVICE=cuda
USER app
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=90s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PROBE_PORT', '8001'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]

# ---------------------------------------------------------------- CPU (default)
FROM ${PYTHON_IMAGE} AS cpu
ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --create-home --uid 10001 app
WORKDIR /srv
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY app ./app
RUN bash scripts/install.sh "${EXTRAS}" && rm -rf /root/.cache
# Baked in so the image runs alone; docker-compose.yml mounts ./models over it read-only.
COPY models ./models
ENV MODEL_DIR=/srv/models HOST=0.0.0.0 PORT=8000 PROBE_PORT=8001 DEVICE=cpu
USER app
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PROBE_PORT', '8001'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
