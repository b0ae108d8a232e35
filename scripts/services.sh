#!/usr/bin/env bash
# Starts any of the brokers the test suite uses that is down (PostgreSQL, Redis,
# RabbitMQ, Mosquitto, NATS with JetStream), with the machine's own commands.
# Quiet when everything is up; never fails the caller for a service it cannot start.
set -u

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local port=$1 name=$2
  for _ in $(seq 1 60); do
    up "$port" && return 0
    sleep 0.5
  done
  echo "services: $name did not come up on port $port" >&2
  return 1
}

start() {
  local port=$1 name=$2
  shift 2
  up "$port" && return 0
  if ! command -v "$1" >/dev/null 2>&1 && [ ! -x "$1" ]; then
    echo "services: $name is not installed; tests that need it will fail" >&2
    return 0
  fi
  echo "services: starting $name" >&2
  "$@" >/dev/null 2>&1 || true
  wait_for "$port" "$name" || true
}

if [ -d /etc/postgresql ]; then
  start 5432 PostgreSQL pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
fi
start 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
  --dir /var/lib/redis --logfile /var/log/redis/ci.log
start 5672 RabbitMQ rabbitmq-server -detached
start 1883 Mosquitto mosquitto -d -c /etc/mosquitto/mosquitto.conf
start 4222 NATS start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
  -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
exit 0
