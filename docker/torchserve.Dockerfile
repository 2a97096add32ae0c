# syntax=docker/dockerfile:1.7
# TorchServe with the Voxmill handler and voices baked in, plus the `voxmill ts-gateway`
# sidecar that the Helm chart runs next to it (same image).
#
# The runtime stage is the official TorchServe image (JDK 17, the model-server user, TorchServe's
# layout). That image runs Python 3.9 while Voxmill's pins need 3.11, so the build stage makes a
# relocatable CPython 3.11 (python-build-standalone, via uv) and a venv in /opt, which the
# runtime stage copies in: TorchServe starts its model workers with the interpreter that
# launched it (/opt/venv/bin/python), so the base image's own Python stays unused.
# The environment holds exactly the pins CI tests (requirements.txt) except two packages swapped
# for their builds of the same version: torch from PyTorch's CUDA index and onnxruntime-gpu for
# onnxruntime. tests/deploy checks these versions against requirements.txt.
#
#   GPU (default):  docker build -f docker/torchserve.Dockerfile -t voxmill-torchserve:0.1.0-gpu .
#   CPU variant:    docker build -f docker/torchserve.Dockerfile -t voxmill-torchserve:0.1.0-cpu \
#                     --build-arg TORCHSERVE_IMAGE=pytorch/torchserve:0.12.0-cpu \
#                     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu \
#                     --build-arg ONNXRUNTIME_PACKAGE=onnxruntime --build-arg MAR_PROFILE=cpu .

ARG TORCHSERVE_IMAGE=pytorch/torchserve:0.12.0-gpu
ARG BUILD_IMAGE=ghcr.io/astral-sh/uv:0.9.5-bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG PYTHON_VERSION=3.11.14
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG ONNXRUNTIME_PACKAGE=onnxruntime-gpu
ARG ONNXRUNTIME_VERSION=1.31.1
ARG MAR_PROFILE=gpu
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    PYTHONDONTWRITEBYTECODE=1
RUN uv python install "${PYTHON_VERSION}" \
    && uv venv --python "${PYTHON_VERSION}" --no-python-downloads /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv
WORKDIR /src
COPY requirements.txt ./
# requirements.txt is a complete lock, so --no-deps installs exactly it; torch and onnxruntime
# come separately in their accelerator builds of the same versions.
RUN uv pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" \
    && grep -v -E '^(torch|onnxruntime)==' requirements.txt > /tmp/requirements-image.txt \
    && uv pip install --no-deps -r /tmp/requirements-image.txt \
       "${ONNXRUNTIME_PACKAGE}==${ONNXRUNTIME_VERSION}"
COPY pyproject.toml ./
COPY contract ./contract
COPY text_processing ./text_processing
COPY audio ./audio
COPY handlers ./handlers
COPY synthesis ./synthesis
COPY messaging ./messaging
COPY worker ./worker
COPY api ./api
COPY gateway ./gateway
COPY voices ./voices
COPY cli ./cli
COPY devtools ./devtools
RUN uv pip install --no-deps .
COPY model-store/config.properties /opt/model-store/config.properties
COPY model-store/profiles /opt/model-store/profiles
COPY model-store/joe /opt/model-store/joe
RUN voxmill build-mar --piper-default joe --profile "${MAR_PROFILE}" --output-dir /opt/model-store \
    && mkdir /opt/mars \
    && mv /opt/model-store/*.mar /opt/mars/

FROM ${TORCHSERVE_IMAGE} AS runtime
USER 0
# The official image ships compilers; nothing here builds anything at run time.
RUN for package in build-essential g++ gcc make; do \
        if dpkg-query -W "$package" >/dev/null 2>&1; then \
            apt-get purge -y --auto-remove "$package" || exit 1; \
        fi; \
    done \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/python /opt/python
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/model-store/config.properties /home/model-server/config.properties
# Baked voices, owned by root: the server reads them and cannot change them. The chart can
# mount a volume with other archives over this directory instead.
COPY --from=build /opt/mars/ /home/model-server/model-store/
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TEMP=/tmp
WORKDIR /home/model-server
# model-server, the upstream image's user (uid 1000).
USER 1000:1000
# 8090 is the gateway; TorchServe's own ports listen on loopback only.
EXPOSE 8090
HEALTHCHECK --interval=30s --timeout=10s --start-period=300s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8082/metrics', timeout=8)"]
ENTRYPOINT ["torchserve"]
CMD ["--foreground", "--ncs", "--ts-config", "/home/model-server/config.properties", "--model-store", "/home/model-server/model-store"]
