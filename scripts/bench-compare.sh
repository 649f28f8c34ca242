#!/usr/bin/env bash
# Before / after: the hot-path benchmarks (bench edge, bench bridge, bench cloud) of an older
# commit against this checkout, on one private stack, runs interleaved (base, head, base, head,
# ...) so that both sides see the same machine. Medians of RUNS per side, written as a table and
# as JSON to bench-results/compare/ (ignored by git).
#   scripts/bench-compare.sh BASE_REV [RUNS]        (RUNS per side, default 3)
# The base is checked out (git worktree) with its own virtual environment under
# ~/.cache/edgecloud/bench-compare/<sha>; pip's cache makes that a minute or two.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${1:?usage: scripts/bench-compare.sh BASE_REV [RUNS]}
RUNS=${2:-3}
SHA=$(git rev-parse --verify "$BASE^{commit}")
HEAD_SHA=$(git rev-parse HEAD)
OUT=${BENCH_OUT:-bench-results}/compare
STATE=${BENCH_STATE_DIR:-$HOME/.cache/edgecloud/bench-compare/stack}
TREE=$HOME/.cache/edgecloud/bench-compare/$SHA
PY=$PWD/.venv/bin/python
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ ! -x "$TREE/.venv/bin/edgecloud" ]; then
  echo "bench-compare: checking out $SHA into $TREE (its own venv)" >&2
  rm -rf "$TREE"
  git worktree prune
  git worktree add --detach "$TREE" "$SHA" >/dev/null
  scripts/make-venv.sh "$TREE/.venv" "" >/dev/null
  "$TREE/.venv/bin/python" -m pip install -q -e "$TREE[edge,sync,cloud,dev]"
fi

read -r PG_URL KAFKA MQTT < <($PY - "$STATE" <<'PYEOF'
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import ensure_infra
infra = ensure_infra(Path(sys.argv[1]), Ports(46432, 42883, 46092, 46093))
user, password = infra.mqtt_account("admin")
print(infra.pg_admin_url, infra.kafka_bootstrap, f"mqtt://{user}:{password}@{infra.mqtt_host}:{infra.mqtt_port}")
PYEOF
)
# benchmarks that default to the dev stack use this private one (bring-your-own), both sides
export EDGECLOUD_DEV_POSTGRES_URL=$PG_URL EDGECLOUD_DEV_KAFKA_BOOTSTRAP=$KAFKA EDGECLOUD_DEV_MQTT_URL=$MQTT
stop_stack() {
  $PY - "$STATE" <<'PYEOF' || true
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import Infra
Infra(Path(sys.argv[1]), Ports(46432, 42883, 46092, 46093)).stop()
PYEOF
}
trap stop_stack EXIT

settle() {
  $PY -c "import psycopg, sys; c = psycopg.connect(sys.argv[1].replace('+psycopg', ''), autocommit=True); c.execute('CHECKPOINT')" "$PG_URL"
  sync
  sleep 3
}

# one run of each benchmark with the edgecloud of tree $2 (its own models and code), JSON in
# $OUT/$1-<bench>-$3.json; the bridge in single events, the one shape the base's bench knows
one_side() {
  local side=$1 tree=$2 run=$3 shape=()
  local ec="$tree/.venv/bin/edgecloud"
  [ "$side" = head ] && shape=(--shape single)
  (cd "$tree" && "$ec" bench edge --runs 1 --database-url "$PG_URL" --json "$OUT/$side-edge-$run.json")
  settle
  (cd "$tree" && "$ec" bench bridge --runs 1 --outage-seconds 0 "${shape[@]}" \
    --json "$OUT/$side-bridge-$run.json")
  settle
  (cd "$tree" && "$ec" bench cloud --runs 1 --pg-admin-url "$PG_URL" --kafka-bootstrap "$KAFKA" \
    --json "$OUT/$side-cloud-$run.json")
  settle
}

for run in $(seq 1 "$RUNS"); do
  echo "bench-compare: run $run of $RUNS, base $SHA" >&2
  one_side base "$TREE" "$run"
  echo "bench-compare: run $run of $RUNS, head $HEAD_SHA" >&2
  one_side head "$PWD" "$run"
done

$PY - "$OUT" "$RUNS" "$SHA" "$HEAD_SHA" <<'PYEOF'
import json, statistics, sys
from pathlib import Path
out, runs, base, head = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
keys = ("rate_per_s", "ratio_to_limit", "p99_ms")
summary: dict = {"base": base, "head": head, "runs": runs, "benches": {}}
print(f"| bench | metric | base {base[:8]} | head {head[:8]} | head / base |")
print("|---|---|---|---|---|")
for bench in ("edge", "bridge", "cloud"):
    sides = {}
    for side in ("base", "head"):
        results = [json.loads((out / f"{side}-{bench}-{i}.json").read_text()) for i in range(1, runs + 1)]
        sides[side] = {k: statistics.median(r[k] for r in results) for k in keys}
        sides[side]["lost"] = max(r["lost"] for r in results)
    summary["benches"][bench] = sides
    for k in (*keys, "lost"):
        b, h = sides["base"][k], sides["head"][k]
        ratio = f"{h / b:.2f}" if b else "-"
        print(f"| {bench} | {k} | {b:,.4g} | {h:,.4g} | {ratio} |")
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
PYEOF
