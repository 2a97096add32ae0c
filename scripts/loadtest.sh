#!/usr/bin/env bash
# make loadtest: Locust, headless, for a bounded time, against the local stack.
# Uses the API on http://127.0.0.1:${PORT:-8000} if one answers /readyz; otherwise starts the
# distributed stack (scripts/stack.sh) and stops it afterwards. Knobs: LOADTEST_TIME (60s),
# LOADTEST_USERS (6), LOADTEST_SPAWN_RATE (2), VOXMILL_API_KEY (when the API has keys),
# LOADTEST_HOST (another API, e.g. a cluster's ingress: used as is, nothing is started).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8000}
HOST=${LOADTEST_HOST:-http://127.0.0.1:$PORT}
started=""
if [ -z "${LOADTEST_HOST:-}" ] && ! curl -fs "$HOST/readyz" >/dev/null 2>&1; then
  # Locust's users stand for many clients but share one address: the stack started here has the
  # per-client limits of expensive requests off (an API started elsewhere keeps its own).
  VOXMILL_CLIENT_CONCURRENCY=0 VOXMILL_CLIENT_RATE_PER_MINUTE=0 bash scripts/stack.sh up
  started=1
fi
cleanup() { if [ -n "$started" ]; then bash scripts/stack.sh down; fi; }
trap cleanup EXIT
.venv-loadtest/bin/locust -f bench/locustfile.py --headless --host "$HOST" \
  --users "${LOADTEST_USERS:-6}" --spawn-rate "${LOADTEST_SPAWN_RATE:-2}" \
  --run-time "${LOADTEST_TIME:-60s}" --stop-timeout 30 --only-summary
