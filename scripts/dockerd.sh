#!/usr/bin/env bash
# The project's own Docker engine (Debian's docker.io), never the system one:
#   scripts/dockerd.sh start|stop|status|env
# Data root (images and layers, kept so that warm builds reuse them), exec root, pid file,
# socket and log all live under EDGECLOUD_DOCKER_DIR (default ~/.cache/edgecloud/images/docker).
# `start` is idempotent and prints nothing but progress on stderr; `env` prints the
# `export DOCKER_HOST=unix://...` line for the clients. Needs root (dockerd does).
set -euo pipefail

dir=${EDGECLOUD_DOCKER_DIR:-$HOME/.cache/edgecloud/images/docker}
sock=$dir/run/docker.sock
pidfile=$dir/run/docker.pid
log=$dir/dockerd.log
export DOCKER_HOST=unix://$sock
docker=$(command -v /usr/bin/docker || command -v docker || true)

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null \
    && [ -S "$sock" ] && "$docker" version >/dev/null 2>&1
}

start() {
  if running; then
    echo "dockerd: running (pid $(cat "$pidfile"), $DOCKER_HOST)" >&2
    return 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd: not installed (make install)" >&2; exit 1; }
  [ -n "$docker" ] || { echo "dockerd: no docker client (make install)" >&2; exit 1; }
  [ "$(id -u)" -eq 0 ] || { echo "dockerd: needs root" >&2; exit 1; }
  mkdir -p "$dir/data" "$dir/run" "$dir/exec"
  rm -f "$sock"
  # setsid: the daemon outlives the shell that started it; stop() ends it by its pid file.
  setsid dockerd --data-root "$dir/data" --exec-root "$dir/exec" --pidfile "$pidfile" \
    --host "$DOCKER_HOST" --storage-driver overlay2 --log-driver json-file \
    --log-opt max-size=10m >>"$log" 2>&1 </dev/null &
  local pid=$! deadline=$((SECONDS + 90))
  until running; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dockerd: exited at start; last lines of $log:" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "dockerd: not answering after 90 s ($log)" >&2
      exit 1
    fi
    sleep 0.5
  done
  echo "dockerd: started (pid $(cat "$pidfile"), $DOCKER_HOST)" >&2
}

stop() {
  [ -f "$pidfile" ] || { echo "dockerd: not running" >&2; return 0; }
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local deadline=$((SECONDS + 60))
    while kill -0 "$pid" 2>/dev/null; do
      if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid"; break; fi
      sleep 0.5
    done
  fi
  rm -f "$pidfile" "$sock"
  # dockerd leaves its default network namespace mounted; unmounted, the folder can be removed
  if mountpoint -q "$dir/exec/netns/default" 2>/dev/null; then umount "$dir/exec/netns/default"; fi
  echo "dockerd: stopped" >&2
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running $DOCKER_HOST"; else echo "stopped"; exit 3; fi ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
