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

# one private stack per side, each started by that side's own code (the head's Kafka takes
# SASL/SCRAM only, which the base's clients do not speak): Postgres and Kafka for bench edge
# and bench cloud; bench bridge starts a broker and a Kafka of its own on either side
stack() {  # side tree ports... -> "pg_admin_url bootstrap [sasl_user sasl_password_file]"
  local side=$1 tree=$2
  shift 2
  (cd "$tree" && .venv/bin/python - "$STATE/$side" "$@" <<'PYEOF'
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import ensure_infra
infra = ensure_infra(Path(sys.argv[1]), Ports(*map(int, sys.argv[2:6])))
line = [infra.pg_admin_url, infra.kafka_bootstrap]
client = getattr(infra, "kafka_client", None)
if client is not None:
    conn = client("bench")
    if conn.username:
        line += [conn.username, conn.password_file or ""]
print(" ".join(line))
PYEOF
  )
}
stop_stacks() {
  for side in base head; do
    local tree=$TREE ports="46432 42883 46092 46093"
    [ "$side" = head ] && tree=$PWD ports="47432 43883 47092 47093"
    (cd "$tree" && .venv/bin/python - "$STATE/$side" $ports <<'PYEOF') || true
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import Infra
Infra(Path(sys.argv[1]), Ports(*map(int, sys.argv[2:6]))).stop()
PYEOF
  done
}
trap stop_stacks EXIT
read -r BASE_PG BASE_KAFKA < <(stack base "$TREE" 46432 42883 46092 46093)
read -r HEAD_PG HEAD_KAFKA HEAD_USER HEAD_PASSWORD_FILE < <(stack head "$PWD" 47432 43883 47092 47093)

settle() {
  for url in "$BASE_PG" "$HEAD_PG"; do
    $PY -c "import psycopg, sys; c = psycopg.connect(sys.argv[1].replace('+psycopg', ''), autocommit=True); c.execute('CHECKPOINT')" "$url"
  done
  sync
  sleep 3
}

# one run of each benchmark with the edgecloud of tree $2 (its own models and code), JSON in
# $OUT/$1-<bench>-$3.json; the bridge in single events, the one shape the base's bench knows
one_side() {
  local side=$1 tree=$2 run=$3 shape=() pg=$BASE_PG kafka=$BASE_KAFKA sasl=()
  local ec="$tree/.venv/bin/edgecloud"
  if [ "$side" = head ]; then
    shape=(--shape single) pg=$HEAD_PG kafka=$HEAD_KAFKA
    sasl=(EDGECLOUD_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT EDGECLOUD_KAFKA_SASL_USERNAME="$HEAD_USER"
          EDGECLOUD_KAFKA_SASL_PASSWORD_FILE="$HEAD_PASSWORD_FILE")
  fi
  # a result already there (an interrupted comparison) is kept: delete $OUT to start afresh
  [ -s "$OUT/$side-cloud-$run.json" ] && return 0
  [ -s "$OUT/$side-edge-$run.json" ] ||
  (cd "$tree" && "$ec" bench edge --runs 1 --database-url "$pg" --json "$OUT/$side-edge-$run.json")
  settle
  [ -s "$OUT/$side-bridge-$run.json" ] ||
  (cd "$tree" && "$ec" bench bridge --runs 1 --outage-seconds 0 "${shape[@]}" \
    --json "$OUT/$side-bridge-$run.json")
  settle
  (cd "$tree" && env "${sasl[@]}" "$ec" bench cloud --runs 1 --pg-admin-url "$pg" \
    --kafka-bootstrap "$kafka" --json "$OUT/$side-cloud-$run.json")
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
def cpu_keys(result):  # the CPU cost per message a benchmark reports in extra, when it does
    return sorted(k for k, v in result.get("extra", {}).items() if "cpu" in k and isinstance(v, (int, float)))
summary: dict = {"base": base, "head": head, "runs": runs, "benches": {}}
print(f"| bench | metric | base {base[:8]} | head {head[:8]} | head / base |")
print("|---|---|---|---|---|")
for bench in ("edge", "bridge", "cloud"):
    sides = {}
    for side in ("base", "head"):
        results = [json.loads((out / f"{side}-{bench}-{i}.json").read_text()) for i in range(1, runs + 1)]
        sides[side] = {k: statistics.median(r[k] for r in results) for k in keys}
        for k in cpu_keys(results[0]):
            if all(k in r["extra"] for r in results):
                sides[side][k] = statistics.median(r["extra"][k] for r in results)
        sides[side]["lost"] = max(r["lost"] for r in results)
    summary["benches"][bench] = sides
    for k in (*keys, *sorted(set(sides["base"]) & set(sides["head"]) - {*keys, "lost"}), "lost"):
        b, h = sides["base"][k], sides["head"][k]
        ratio = f"{h / b:.2f}" if b else "-"
        print(f"| {bench} | {k} | {b:,.4g} | {h:,.4g} | {ratio} |")
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
PYEOF
