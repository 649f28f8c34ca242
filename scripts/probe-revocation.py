"""Revocation -> refusal latency of registered devices (issue 16), a probe, not a benchmark.

Starts its own Postgres and Mosquitto (with the dynamic security plugin) on free ports in a
temporary state dir, the cloud API as a process and a node's device agent; registers N
devices, checks each connects, then for each: ``DELETE /api/v1/devices/registry/{id}`` and
``mosquitto_pub`` as that device in a loop until the broker refuses it. Prints the sorted
latencies (ms; each includes one ``mosquitto_pub`` start, ~50 ms here) and p50 / p99.

    .venv/bin/python scripts/probe-revocation.py [N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.dev.stack import Infra, Ports
from edgecloud.edge.device_agent import maybe_start
from edgecloud.edge.device_settings import DeviceAgentSettings


def accepted(port: int, device: str, password: str) -> bool:
    done = subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1", "-u",
         device, "-P", password, "-i", device, "-t", f"devices/{device}/telemetry", "-m", "{}"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode == 0 and "Not authorized" not in done.stderr


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        infra = Infra(Path(tmp) / "state", Ports.free())
        try:
            infra.postgres.start()
            infra.mosquitto.start()
            url = infra.create_database("probe")
            migrate(url)
            engine = make_engine(url)
            with Session(engine) as session:
                op, _ = auth.create_token(session, "operate", "probe")
                node, _ = auth.create_token(session, "node", "n1", "n1")
            engine.dispose()
            port = rest._free_port()
            api = rest.start_api(url, port, Path(tmp) / "api.log")
            base, hdr = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {op}"}
            ids = [f"rv-{i:04d}" for i in range(n)]
            res = httpx.post(
                base + "/api/v1/devices/registry",
                headers=hdr,
                timeout=60,
                json={"devices": [{"device_id": d, "node_id": "n1"} for d in ids]},
            )
            pw = {i["device_id"]: i["password"] for i in res.json()["items"]}
            user, secret = infra.mqtt_account("edge-agent")
            agent = maybe_start(DeviceAgentSettings(
                node_id="n1", cloud_api_url=base, node_token=node,
                mqtt_url=f"mqtt://{user}:{secret}@127.0.0.1:{infra.mqtt_port}",
                devices_password_file=infra.mosquitto.password_file,
                devices_broker_pid_file=infra.mosquitto.pid_file,
                devices_state_dir=Path(tmp) / "agent",
            ))  # fmt: skip
            assert agent is not None
            for d in ids:
                deadline = time.monotonic() + 60
                while not accepted(infra.mqtt_port, d, pw[d]):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{d} was never applied")
            ms: list[float] = []
            for d in ids:
                t0 = time.monotonic()
                httpx.delete(f"{base}/api/v1/devices/registry/{d}", headers=hdr, timeout=30)
                while accepted(infra.mqtt_port, d, pw[d]):
                    pass
                ms.append((time.monotonic() - t0) * 1000)
            agent.stop()
            api.terminate()
            api.wait(timeout=20)
            ms.sort()
            p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
            print("revocation -> refusal ms:", [round(x) for x in ms])
            print(f"n={n} p50={ms[len(ms) // 2]:.0f} ms p99={p99:.0f} ms max={ms[-1]:.0f} ms")
        finally:
            infra.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
