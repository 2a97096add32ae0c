# syntax=docker/dockerfile:1.7
# Voxmill conversion worker: takes segment tasks from RabbitMQ and calls TorchServe.
# It installs exactly what `make` installs and CI tests: torch==2.13.0 (CPU build), then the
# pins in requirements.txt, then the project without dependencies.
#
#   docker build -f docker/worker.Dockerfile -t voxmill-worker:0.1.0 .   (from the repository root)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.txt ./
# torch first, pinned, from PyTorch's CPU index: from PyPI it would pull GBs of CUDA libraries.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -r requirements.txt
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
RUN pip install --no-cache-dir --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
ARG UID=10001
RUN groupadd --system --gid "${UID}" voxmill \
    && useradd --system --uid "${UID}" --gid voxmill --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin voxmill
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VOXMILL_MODE=distributed \
    VOXMILL_ENVIRONMENT=production \
    VOXMILL_DATA_DIR=/tmp/voxmill
WORKDIR /tmp
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/healthz', timeout=4)"]
# The worker finishes and acks its task on SIGTERM; give it the time (see the Helm chart).
STOPSIGNAL SIGTERM
ENTRYPOINT ["voxmill"]
CMD ["worker", "--health-port", "8001"]
