#!/usr/bin/env bash
# make torchserve / make torchserve-stop: TorchServe on 127.0.0.1:8080 (8081 management, 8082
# metrics) with every archive in model-store/. Its token file is .run/torchserve/key_file.json.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m devtools.torchserve_local "$1" --workdir .run/torchserve --model-store model-store
