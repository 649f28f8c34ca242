#!/usr/bin/env bash
# Runs every `edgecloud bench` on a private stack (its own state dir and ports, started and
# stopped here) and writes one JSON per benchmark to bench-results/ (ignored by git), then a
# summary table. Run it on an otherwise idle machine: every figure is a ratio or a median
# measured in the same run, but two cores shared with other work give noisy medians.
#   scripts/bench-all.sh [RUNS]        (RUNS per benchmark, default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
OUT=${BENCH_OUT:-bench-results}
STATE=${BENCH_STATE_DIR:-$HOME/.cache/edgecloud/bench}
mkdir -p "$OUT"
PY=.venv/bin/python
EC=.venv/bin/edgecloud

# `bench rollout` runs on the dev stack (it needs its own accounts): stop it afterwards unless it
# was already up before this script
DEV_WAS_UP=$($PY -c "
from edgecloud.dev.stack import DEV_PORTS, Infra, default_state_dir
print(int(any(s.running() for s in Infra(default_state_dir('dev'), DEV_PORTS).managed())))")

read -r PG_URL KAFKA MQTT < <($PY - "$STATE" <<'PYEOF'
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import ensure_infra
infra = ensure_infra(Path(sys.argv[1]), Ports(45432, 41883, 49092, 49093))
user, password = infra.mqtt_account("admin")
print(infra.pg_admin_url, infra.kafka_bootstrap, f"mqtt://{user}:{password}@{infra.mqtt_host}:{infra.mqtt_port}")
PYEOF
)
# Benchmarks that default to the dev stack use this private one instead (bring-your-own).
export EDGECLOUD_DEV_POSTGRES_URL=$PG_URL EDGECLOUD_DEV_KAFKA_BOOTSTRAP=$KAFKA EDGECLOUD_DEV_MQTT_URL=$MQTT
stop_stack() {
  $PY - "$STATE" <<'PYEOF' || true
import sys
from pathlib import Path
from edgecloud.dev.base import Ports
from edgecloud.dev.stack import Infra
Infra(Path(sys.argv[1]), Ports(45432, 41883, 49092, 49093)).stop()
PYEOF
  if [ "$DEV_WAS_UP" = 0 ]; then $EC dev down >/dev/null 2>&1 || true; fi
}
trap stop_stack EXIT

# Between benchmarks: the one before leaves dirty pages (Postgres buffers, Kafka segments) that
# the kernel and the checkpointer write out over the next 30 s or more; the next benchmark's
# fsyncs would wait behind them (seen: bridge p99 at 5,000/s 60-400 ms when another process
# wrote 90 MB during the run). CHECKPOINT + sync, then a short pause.
settle() {
  $PY -c "import psycopg, sys; c = psycopg.connect(sys.argv[1].replace('+psycopg', ''), autocommit=True); c.execute('CHECKPOINT')" "$PG_URL"
  sync
  sleep 3
}

set -x
settle
$EC bench edge --runs "$RUNS" --database-url "$PG_URL" --json "$OUT/edge.json"
settle
$EC bench bridge --runs "$RUNS" --json "$OUT/bridge.json"
settle
# the Telegraf peer (issue 18): built here from its Go module when missing (minutes, cached)
if scripts/build-telegraf.sh; then
  $EC bench bridge --peer telegraf --runs "$RUNS" --events 30000 --outage-seconds 0 \
    --json "$OUT/bridge-peer.json"
  settle
fi
$EC bench cloud --runs "$RUNS" --pg-admin-url "$PG_URL" --kafka-bootstrap "$KAFKA" --rest \
  --json "$OUT/cloud.json"
settle
$EC bench mqtt --runs "$RUNS" --json "$OUT/mqtt.json"
settle
$EC bench rollout --nodes 50 --json "$OUT/rollout.json"
settle
$EC bench e2e --runs "$RUNS" --json "$OUT/e2e.json"
settle
$EC bench fleet --nodes 1000,3000,10000 --json "$OUT/fleet.json"
set +x

# one chart per benchmark beside its JSON (SVG written by bench/chart.py)
$PY - "$OUT" <<'PYEOF'
import sys
from pathlib import Path
from edgecloud.bench.chart import bench_chart, fleet_chart
from edgecloud.bench.common import BenchResult
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    result = BenchResult.model_validate_json(path.read_text())
    (fleet_chart if result.name == "fleet" else bench_chart)(result, path.with_suffix(".svg"))
    print("chart:", path.with_suffix(".svg"))
PYEOF

$PY - "$OUT" <<'PYEOF'
import json, sys
from pathlib import Path
print(f"{'bench':<8} {'rate/s':>9} {'limit/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'lost':>5} {'dup':>5}")
for name in ("edge", "bridge", "mqtt", "cloud", "rollout", "e2e"):
    path = Path(sys.argv[1]) / f"{name}.json"
    if path.exists():
        r = json.loads(path.read_text())
        print(f"{name:<8} {r['rate_per_s']:>9.0f} {r['limit_rate_per_s']:>9.0f} {r['ratio_to_limit']:>6.2f} "
              f"{r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['lost']:>5} {r['duplicates']:>5}")
PYEOF
