#!/usr/bin/env bash
# One command per side of the stack in Docker compose (docker-compose 1.29, Debian's):
#   scripts/compose.sh up edge|cloud     start (images from `make images`), wait until healthy
#   scripts/compose.sh down edge|cloud   stop and remove the containers; named volumes stay
#   scripts/compose.sh ps|logs|exec|config edge|cloud [ARGS...]   passed to docker-compose
#   scripts/compose.sh env edge|cloud    print the env file's path (for docker-compose yourself)
# It starts the project's own dockerd if needed (scripts/dockerd.sh) and generates, once, the
# passwords under $EDGECLOUD_STATE_DIR/compose/secrets (mode 0700; default state dir
# ~/.cache/edgecloud/dev): compose secrets (mosquitto-passwd, DB passwords, Kafka SCRAM users,
# Dapr secret files) and the env file each compose file reads. Nothing secret is in the repo.
# Settings (environment): EDGE_MQTT_PORT (1883), AGENT_HTTP_PORT (8410), API_PORT (8400),
# KAFKA_PORT (9094), KAFKA_EXTERNAL_HOST (host.docker.internal: the cloud's address as the edge
# bridge sees it), NODE_ID (edge-1), NODE_LABELS, EDGECLOUD_COMPOSE_PROJECT (edgecloud: projects
# <it>-edge and <it>-cloud), COMPOSE_WAIT_S (300), ALERT_WEBHOOK_URL (the
# cloud-worker sidecar's alert-webhook binding; default a discard address).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
action=${1:-}
side=${2:-}
[ $# -ge 2 ] && shift 2 || set --
case $side in edge|cloud) ;; *)
  echo "usage: $0 up|down|ps|logs|exec|config|env edge|cloud [ARGS...]" >&2; exit 2 ;;
esac

state=${EDGECLOUD_STATE_DIR:-$HOME/.cache/edgecloud/dev}/compose
secrets=$state/secrets
project=${EDGECLOUD_COMPOSE_PROJECT:-edgecloud}
node=${NODE_ID:-edge-1}
mkdir -p "$state" "$secrets"
chmod 700 "$state" "$secrets"

secret() {  # name -> a random password, made once and kept in the secrets folder
  local file=$secrets/$1
  if [ ! -s "$file" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$file")
  fi
  cat "$file"
}

readable() {  # the containers' users (postgres, mosquitto, daprd) read the mounted secret files
  chmod 644 "$@"  # the folder (0700) keeps them from other host users
}

write_edge() {
  local agent bridge sim dapr db token kafka_pw passwd=$secrets/mosquitto-passwd
  agent=$(secret mqtt-edge-agent); bridge=$(secret mqtt-bridge); sim=$(secret mqtt-simulator)
  dapr=$(secret mqtt-dapr-edge); db=$(secret edge-db-password); token=$(secret agent-http-token)
  kafka_pw=$(secret kafka-bridge)
  if [ ! -s "$passwd" ]; then
    : >"$passwd"
    for pair in "edge-agent $agent" "bridge $bridge" "simulator $sim" "dapr-edge $dapr"; do
      mosquitto_passwd -b "$passwd" ${pair% *} "${pair#* }"
    done
  fi
  printf '{"mqtt-url": "tcp://dapr-edge:%s@mosquitto:1883", "config-connection-string": "postgresql://edgecloud:%s@postgres:5432/edge"}\n' \
    "$dapr" "$db" >"$secrets/dapr-edge-secrets.json"
  readable "$passwd" "$secrets/edge-db-password" "$secrets/dapr-edge-secrets.json"
  local node_token=""
  [ -s "$secrets/node-token-$node" ] && node_token=$(cat "$secrets/node-token-$node")
  local kafka_config
  kafka_config=$(printf '{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "bridge", "sasl.password": "%s"}' "$kafka_pw")
  (umask 077; cat >"$state/edge.env" <<EOF
EDGECLOUD_COMPOSE_SECRETS=$secrets
NODE_ID=$node
NODE_LABELS=${NODE_LABELS:-}
EDGE_MQTT_PORT=${EDGE_MQTT_PORT:-1883}
AGENT_HTTP_PORT=${AGENT_HTTP_PORT:-8410}
EDGE_DB_PASSWORD=$db
AGENT_MQTT_PASSWORD=$agent
BRIDGE_MQTT_PASSWORD=$bridge
SIMULATOR_MQTT_PASSWORD=$sim
AGENT_HTTP_TOKEN=$token
KAFKA_BOOTSTRAP=${KAFKA_EXTERNAL_HOST:-host.docker.internal}:${KAFKA_PORT:-9094}
KAFKA_CONFIG=$kafka_config
CLOUD_API_URL=http://${KAFKA_EXTERNAL_HOST:-host.docker.internal}:${API_PORT:-8400}
NODE_TOKEN=$node_token
OPERATOR_PUBLIC_KEYS=${OPERATOR_PUBLIC_KEYS:-}
EOF
  )
}

write_cloud() {
  local db kafka_pw
  db=$(secret cloud-db-password); kafka_pw=$(secret kafka-bridge)
  printf 'bridge %s\n' "$kafka_pw" >"$secrets/kafka-scram-users"
  # every secretKeyRef of deploy/dapr/cloud: the sidecars reach Kafka on the internal plaintext
  # listener; alerts go nowhere (discard port) until ALERT_WEBHOOK_URL names a receiver
  printf '{"kafka-brokers": "kafka:9092", "kafka-auth-type": "none", "kafka-sasl-username": "", "kafka-sasl-password": "", "kafka-sasl-mechanism": "SHA-512", "alert-webhook-url": "%s"}\n' \
    "${ALERT_WEBHOOK_URL:-http://127.0.0.1:9/alerts}" >"$secrets/dapr-cloud-secrets.json"
  readable "$secrets/cloud-db-password" "$secrets/kafka-scram-users" "$secrets/dapr-cloud-secrets.json"
  (umask 077; cat >"$state/cloud.env" <<EOF
EDGECLOUD_COMPOSE_SECRETS=$secrets
CLOUD_DB_PASSWORD=$db
API_PORT=${API_PORT:-8400}
KAFKA_PORT=${KAFKA_PORT:-9094}
KAFKA_EXTERNAL_HOST=${KAFKA_EXTERNAL_HOST:-host.docker.internal}
OPENAI_API_KEY=${OPENAI_API_KEY:-}
OPENAI_BASE_URL=${OPENAI_BASE_URL:-}
EOF
  )
}

"$root/scripts/dockerd.sh" start
eval "$("$root/scripts/dockerd.sh" env)"
docker=$(command -v /usr/bin/docker || command -v docker)

compose() {  # side args...
  local s=$1; shift
  docker-compose --project-name "$project-$s" --env-file "$state/$s.env" \
    --file "$root/compose.$s.yaml" "$@"
}

node_token() {  # a node-scope token for this node, from the cloud compose's database, once
  [ -s "$secrets/node-token-$node" ] && return 0
  [ -f "$state/cloud.env" ] || return 0
  local id
  id=$(compose cloud ps -q api 2>/dev/null || true)
  [ -n "$id" ] || return 0
  local out
  out=$(compose cloud exec -T api edgecloud token create --scope node --node-id "$node" \
    --name "compose-$node" --no-migrate) || return 0
  (umask 077; printf '%s' "$(printf '%s\n' "$out" | tail -1)" >"$secrets/node-token-$node")
  echo "compose: node token for $node created in the cloud compose" >&2
}

wait_healthy() {  # every container of the side running, and healthy where it has a check
  local deadline=$((SECONDS + ${COMPOSE_WAIT_S:-300})) ids pending
  while :; do
    ids=$(compose "$side" ps -q)
    pending=""
    for id in $ids; do
      status=$("$docker" inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
      case $status in
        *" running healthy"|*" running ") ;;
        *) pending="$pending ${status%% *}" ;;
      esac
    done
    if [ -n "$ids" ] && [ -z "$pending" ]; then return 0; fi
    if [ $SECONDS -ge $deadline ]; then
      echo "compose: not healthy after ${COMPOSE_WAIT_S:-300} s:$pending" >&2
      compose "$side" ps >&2
      exit 1
    fi
    sleep 2
  done
}

if [ "$side" = edge ]; then node_token; write_edge; else write_cloud; fi
case $action in
  up)
    for image in $(compose "$side" config | sed -n 's/^ *image: //p' | grep '^edgecloud' | sort -u); do
      "$docker" image inspect "$image" >/dev/null 2>&1 \
        || { echo "compose: image $image missing: run make images" >&2; exit 1; }
    done
    start=$SECONDS
    compose "$side" up -d "$@"
    wait_healthy
    echo "compose: $project-$side up and healthy in $((SECONDS - start)) s" >&2
    ;;
  down) compose "$side" down "$@" ;;
  ps|logs|exec|config|run|restart|stop|start|top) compose "$side" "$action" "$@" ;;
  env) echo "$state/$side.env" ;;
  *) echo "usage: $0 up|down|ps|logs|exec|config|env edge|cloud [ARGS...]" >&2; exit 2 ;;
esac
