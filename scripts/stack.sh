#!/usr/bin/env bash
# make stack / make stack-down: the distributed mode on one machine.
# TorchServe (127.0.0.1:${TS_PORT:-8080}), two workers, and the API on http://127.0.0.1:${PORT:-8000},
# against the local Postgres (database ${STACK_DB:-voxmill}) and RabbitMQ (queue prefix
# VOXMILL_QUEUE_PREFIX). Logs and pids under .run/stack/. Set the ports, database and prefix to run
# beside someone else's stack on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=.run/stack
BIN=.venv/bin
PORT=${PORT:-8000}
TS_PORT=${TS_PORT:-8080}
STACK_DB=${STACK_DB:-voxmill}
export VOXMILL_MODE=distributed
export VOXMILL_DATABASE_URL=${VOXMILL_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/$STACK_DB}
export VOXMILL_BROKER_URL=${VOXMILL_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/%2F}
export VOXMILL_TORCHSERVE_URL=http://127.0.0.1:$TS_PORT
export VOXMILL_TORCHSERVE_KEY_FILE=$PWD/$RUN/torchserve/key_file.json

down() {
  for name in api worker-1 worker-2; do
    if [ -f "$RUN/$name.pid" ]; then
      kill -TERM "$(cat "$RUN/$name.pid")" 2>/dev/null || true
      rm -f "$RUN/$name.pid"
    fi
  done
  "$BIN/python" -m devtools.torchserve_local stop --workdir "$RUN/torchserve"
}

up() {
  mkdir -p "$RUN"
  down >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='$STACK_DB'" | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE $STACK_DB" >/dev/null
  "$BIN/voxmill" migrate
  "$BIN/python" -m devtools.torchserve_local start --workdir "$RUN/torchserve" --model-store model-store \
    --port "$TS_PORT"
  for n in 1 2; do
    setsid "$BIN/voxmill" worker --health-host 127.0.0.1 --health-port $((PORT + 10 + n)) >"$RUN/worker-$n.log" 2>&1 &
    echo $! >"$RUN/worker-$n.pid"
  done
  setsid "$BIN/voxmill" api --mode distributed --host 127.0.0.1 --port "$PORT" >"$RUN/api.log" 2>&1 &
  echo $! >"$RUN/api.pid"
  for _ in $(seq 1 60); do
    if curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null; then
      echo "stack up: http://127.0.0.1:$PORT (logs in $RUN/)"
      return 0
    fi
    sleep 1
  done
  echo "the API did not become ready; see $RUN/api.log" >&2
  return 1
}

case "${1:-}" in
  up) up ;;
  down) down; echo "stack down" ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
