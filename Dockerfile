# The CPU image, the default: `docker build -t lstm-serve:cpu .` (or `docker compose up`).
# The CUDA image has a Dockerfile of its own (Dockerfile.cuda): a builder without BuildKit (the
# legacy builder, compose v1, older engines) builds every stage of a file, so a CUDA stage here
# made every CPU build pull a multi-GB CUDA base first.
# No `# syntax=` line and no BuildKit-only instruction (RUN --mount): BuildKit would pull a
# frontend image for the first, the legacy builder refuses the second, and both fail on a build
# machine without a registry. Every stage is FROM the one Python base, so nothing else is pulled.
# It installs with scripts/install.sh, the same script a local install runs: the runtime set,
# which serves with ONNX Runtime and has no torch. `--build-arg EXTRAS=torch` adds the CPU build
# of PyTorch for BACKEND=torchscript, and with it the bundles' TorchScript graphs (model.pt).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- the bundles, pruned
FROM ${PYTHON_IMAGE} AS models
ARG EXTRAS=""
COPY models /models
# Without torch the TorchScript graphs (~22 MB) cannot run: leave them out of the image (the
# service accepts a bundle lacking the graph of a backend it does not use, app/core/bundle.py).
# Done in a stage of its own because a file deleted in a later layer still weighs in the image.
RUN case ",${EXTRAS}," in *,torch,*) ;; *) find /models -name model.pt -delete ;; esac

# ---------------------------------------------------------------- CPU
FROM ${PYTHON_IMAGE} AS cpu
ARG EXTRAS=""
# PIP_NO_CACHE_DIR: pip's download cache would only add its size to the image.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 app
WORKDIR /srv
# The dependencies first, in a layer only pyproject.toml, install.sh and EXTRAS invalidate (a
# stand-in package and README let pip resolve them): after a change to the code or the README,
# a rebuild reuses this layer instead of downloading ~300 MB of wheels again. This is the
# download cache that works with every builder; BuildKit's cache mounts do not build elsewhere.
COPY pyproject.toml ./
COPY scripts ./scripts
RUN mkdir app && touch README.md app/__init__.py \
 && bash scripts/install.sh "${EXTRAS}" \
 && python -m pip uninstall -y -q lstm-serve && rm -rf app README.md build *.egg-info
COPY README.md ./
COPY app ./app
# The service itself; its dependencies are all in place from the layer above.
RUN python -m pip install --no-input -q --no-deps . && rm -rf build *.egg-info
COPY --from=models /models ./models
ENV MODEL_DIR=/srv/models HOST=0.0.0.0 PORT=8000 PROBE_PORT=8001 DEVICE=cpu
USER app
EXPOSE 8000 8001
# Podman keeps HEALTHCHECK only in Docker-format images: `podman build --format docker`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PROBE_PORT', '8001'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]
