#!/usr/bin/env bash
# The GPU benchmark in one command, on a fresh machine with an NVIDIA GPU:
#   bash bench/gpu/run.sh [measure.py options, e.g. --quick or --sections handler]
#
# 1. Installs what is missing. With a bundle from bench/gpu/prepare_offline.sh in .gpu/ (a machine
#    without network), from that bundle; otherwise from the network: CUDA torch (PyTorch's cu128
#    index) unless torch already sees a GPU, onnxruntime-gpu, TorchServe, torch-model-archiver and
#    the project's requirements with pip, and Java 17 with apt.
# 2. Runs bench/gpu/measure.py, which prints the tables; the figures also go to $OUT/gpu.json
#    ($OUT defaults to .run/gpu).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
BUNDLE=${VOXMILL_GPU_BUNDLE:-$ROOT/.gpu}
RUNDIR=$ROOT/.run/gpu
OUT=${OUT:-$RUNDIR}
mkdir -p "$RUNDIR/bin" "$OUT"
export PATH=$RUNDIR/bin:$PATH PYTHONUNBUFFERED=1
t0=$(date +%s)

site=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -d "$BUNDLE" ]; then
  echo "installing from the offline bundle $BUNDLE"
  [ -x "$RUNDIR/jre/bin/java" ] || tar -C "$RUNDIR" -xJf "$BUNDLE/jre.txz"
  export JAVA_HOME=$RUNDIR/jre
  if [ ! -f "$site/ts/frontend/model-server.jar" ]; then
    tar -C "$site" -xzf "$BUNDLE/pylib.tgz"
    rm -rf "$RUNDIR/jar" && mkdir -p "$RUNDIR/jar" && tar -C "$RUNDIR/jar" -xJf "$BUNDLE/ts-jar.txz"
    mkdir -p "$site/ts/frontend"
    "$PY" bench/gpu/repack_jar.py "$RUNDIR/jar" "$site/ts/frontend/model-server.jar"
    rm -rf "$RUNDIR/jar"
  fi
  "$PY" -m pip install -q --no-index --no-deps --disable-pip-version-check "$BUNDLE"/wheels/*.whl
  cat >"$RUNDIR/bin/torchserve" <<EOF
#!/bin/sh
exec "$(command -v "$PY")" -c 'import sys; from ts.model_server import start; sys.argv[0] = "torchserve"; start()' "\$@"
EOF
  chmod +x "$RUNDIR/bin/torchserve"
else
  echo "installing from the network"
  command -v java >/dev/null || { apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless; }
  if ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    "$PY" -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
  fi
  grep -vE '^(torch|onnxruntime)==' requirements.txt >"$RUNDIR/requirements-gpu.txt"
  "$PY" -m pip install -q onnxruntime-gpu -r "$RUNDIR/requirements-gpu.txt"
  ln -sf "$(dirname "$(command -v "$PY")")/torchserve" "$RUNDIR/bin/torchserve" 2>/dev/null || true
fi
echo "installed in $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec "$PY" bench/gpu/measure.py --workdir "$RUNDIR" --out "$OUT/gpu.json" "$@"
