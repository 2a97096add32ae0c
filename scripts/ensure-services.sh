#!/usr/bin/env bash
# Make sure Postgres and RabbitMQ answer on loopback: start them if installed but stopped, install
# them from Debian's packages where they are missing. Idempotent; used by `make test` and `make stack`.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
  echo "ensure-services: $name did not open port $port within 60 s" >&2
  return 1
}

if ! port_open 5432; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
  fi
  ver=$(ls /etc/postgresql | sort -V | tail -n1)
  conf=/etc/postgresql/$ver/main/pg_hba.conf
  # Tests connect as postgres over loopback without a password, as on the reference machines.
  if ! grep -q "voxmill-trust" "$conf"; then
    printf '# voxmill-trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' \
      | $SUDO tee -a "$conf" >/dev/null
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  wait_port 5432 postgres
fi

if ! port_open 5672; then
  if ! command -v rabbitmq-server >/dev/null; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server
  fi
  $SUDO rabbitmq-server -detached || true
  wait_port 5672 rabbitmq
fi
echo "ensure-services: postgres :5432 and rabbitmq :5672 are up"
