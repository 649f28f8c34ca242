#!/usr/bin/env bash
# System packages of the local stack (Debian/Ubuntu): PostgreSQL, Mosquitto (+ clients), kcat,
# a JDK >= 17 and Maven. Installs only what is missing; `apt-get update` runs at most once.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
need=()

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! have initdb; then
  need+=(postgresql)
fi
have psql || need+=(postgresql-client)
{ have mosquitto || [ -x /usr/sbin/mosquitto ]; } || need+=(mosquitto)
have mosquitto_pub || need+=(mosquitto-clients)
have kcat || need+=(kcat)
have mvn || need+=(maven)
have setpriv || need+=(util-linux)
# monitoring: Prometheus (with promtool) and Alertmanager, run by the dev stack (issue 19)
have promtool || need+=(prometheus)
{ have prometheus-alertmanager || have alertmanager; } || need+=(prometheus-alertmanager)
# the dashboard test drives a real headless browser
{ have chromium || have chromium-browser; } || need+=(chromium)
# images and compose (issue 21): Debian's Docker engine (the project runs its own dockerd,
# scripts/dockerd.sh), docker-compose 1.29, and debootstrap for the base image
{ have dockerd || [ -x /usr/sbin/dockerd ]; } || need+=(docker.io)
have docker-compose || need+=(docker-compose)
{ have debootstrap || [ -x /usr/sbin/debootstrap ]; } || need+=(debootstrap)
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if ! have java || [ "$(java_major)" -lt 17 ]; then
  need+=(default-jdk-headless)
fi
py=${PYTHON:-python3}
if [ "$(command -v "$py" || true)" = /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
  need+=(python3-venv)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
if ! have apt-get; then
  echo "missing: ${need[*]} (install them with your package manager)" >&2
  exit 1
fi
# The project runs its own Postgres cluster: do not let the package create and start one.
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  "${sudo[@]}" mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | "${sudo[@]}" tee /etc/postgresql-common/createcluster.conf >/dev/null
fi
echo "system packages: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
