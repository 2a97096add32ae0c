#!/usr/bin/env bash
# Build the offline bundle that bench/gpu/run.sh installs from on a GPU machine without network.
#
# Run it on a machine that reaches PyPI and has a JDK 17 (jlink), from the repository root:
#   bash bench/gpu/prepare_offline.sh [BUNDLE_DIR]        (default: .gpu, ignored by git)
# Environment: GPU_PYTHON_VERSION (default 3.12), the GPU machine's Python.
#
# What goes in (about 50 MB, to fit a 64 MiB transfer):
#   jre.txz      a Java 17 runtime made with jlink from this machine's JDK: only the modules
#                TorchServe's frontend uses (java.desktop for java.beans among them), xz-packed.
#   ts-jar.txz   the contents of TorchServe's frontend jar, xz-packed (a jar is a deflated zip;
#                xz over the unpacked classes halves it); run.sh rebuilds the jar.
#   pylib.tgz    TorchServe's and torch-model-archiver's Python packages (pure Python).
#   wheels/      wheels for the GPU machine's Python of what its image lacks (the API stack's
#                FastAPI/SQLAlchemy/pydantic family, soundfile, pika, ...). PyAV (36 MB) is not
#                carried: the handler and the benchmark never load it (audio/ imports it lazily).
# The GPU machine already has CUDA torch, transformers, numpy, httpx and psutil.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${1:-.gpu}
PYVER=${GPU_PYTHON_VERSION:-3.12}
JDK=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
PY=.venv/bin/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$BUNDLE/wheels"

"$JDK/bin/jlink" --add-modules \
  java.base,java.logging,java.management,java.naming,java.sql,java.xml,jdk.unsupported,java.net.http,java.desktop,java.scripting,jdk.crypto.ec \
  --strip-debug --no-header-files --no-man-pages --compress=0 --output "$work/jre"
tar -C "$work" -cf - jre | xz -6 -T0 >"$BUNDLE/jre.txz"

"$PY" -m pip download -q --no-deps -d "$work/ts" torchserve==0.12.0 torch-model-archiver==0.12.0
mkdir -p "$work/jar" "$work/pylib"
unzip -q "$work/ts/torchserve-0.12.0-py3-none-any.whl" 'ts/*' -x 'ts/frontend/model-server.jar' -d "$work/pylib"
unzip -q "$work/ts/torch_model_archiver-0.12.0-py3-none-any.whl" 'model_archiver/*' -d "$work/pylib"
unzip -q -p "$work/ts/torchserve-0.12.0-py3-none-any.whl" ts/frontend/model-server.jar >"$work/model-server.jar"
unzip -q "$work/model-server.jar" -d "$work/jar"
tar -C "$work/jar" -cf - . | xz -6 -T0 >"$BUNDLE/ts-jar.txz"
tar -C "$work/pylib" -czf "$BUNDLE/pylib.tgz" .

# Pins from requirements.txt; binary wheels for the GPU machine's Python.
pins=$(grep -iE '^(pydantic|pydantic_core|pydantic-settings|python-dotenv|fastapi|starlette|SQLAlchemy|alembic|Mako|sse-starlette|uvicorn|python-multipart|pika|soundfile|pysbd|num2words|annotated-types|typing-inspection|greenlet|annotated-doc|cffi|pycparser|opentelemetry-api|tenacity|Pebble)==' requirements.txt requirements-dev.txt | cut -d: -f2)
for pin in $pins; do
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$BUNDLE/wheels" "$pin"
done
du -sh "$BUNDLE"
