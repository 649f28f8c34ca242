"""The dashboard in a real headless Chromium (Debian's ``chromium`` package): the page served by
a live ``edgecloud cloud api`` loads its assets, calls the API with the token from ``#token=``
and renders the fleet, per-device charts with anomalies marked and the anomaly list with its
escalation note; a screenshot is kept (path printed; EDGECLOUD_TEST_SCREENSHOT_DIR keeps it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Skipped on a developer machine without it; in CI (CI=true) a missing browser is a failure.
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Debian's chromium (make install adds it)",
)


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def dashboard(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    migrate(pg_url)
    end = datetime.now(UTC).replace(microsecond=0)
    rest.seed(pg_url, rest.Dataset(devices=3, readings=3 * 360, interval_s=10, end=end))
    with psycopg.connect(pg_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO escalations (event_id, status, severity, explanation, suggested_action,"
            " model, tokens, attempts, created_at, updated_at)"
            " SELECT event_id, 'done', 'high', 'Vibration spike consistent with bearing wear',"
            " 'Schedule a spindle inspection', 'gpt-x', 99, 1, now(), now()"
            " FROM readings WHERE anomaly ORDER BY ts DESC LIMIT 1"
        )
        conn.execute(
            "UPDATE nodes SET agent = %s, bridge = %s WHERE node_id = 'edge-0'",
            (
                '{"counters": {"received": 400, "processed": 390, "events_published": 380}}',
                '{"counters": {"events_in": 385, "processed": 370}}',
            ),
        )
    engine = make_engine(pg_url)
    with Session(engine) as session:
        token, _ = auth.create_token(session, "read", "dashboard-test")
    engine.dispose()
    port = rest._free_port()
    proc = rest.start_api(pg_url, port, tmp_path / "api.log")
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_dashboard_renders_the_data(dashboard: tuple[str, str], tmp_path: Path) -> None:
    base, token = dashboard
    done = _chromium(tmp_path / "profile-dom", "--dump-dom", f"{base}/#token={token}")
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'data-state="ready"' in dom, dom[:3000]
    # fleet: both nodes, their label and active model
    assert 'data-node="edge-0"' in dom and 'data-node="edge-1"' in dom
    assert "site=site-1" in dom and "bench-model@1" in dom
    # per-hop counters: edge-0's heartbeats (seeded) and the cloud's readings of each node;
    # edge-1 has only the seeded merged counters (received, processed): the rest is unknown
    hops = dict(re.findall(r'data-node="([^"]+)".*?<td class="hops">([^<]*)</td>', dom))
    arrow = " \u2192 "
    edge0, edge1 = hops["edge-0"].split(arrow), hops["edge-1"].split(arrow)
    assert edge0[:5] == ["400", "390", "380", "385", "370"], hops
    assert edge1[2:5] == ["\u2013"] * 3, hops
    assert sorted([int(edge0[5]), int(edge1[5])]) == [360, 720]  # 3 devices x 360 readings
    # one chart per device, a drawn line and anomaly markers
    assert len(re.findall(r'class="chart" data-device="dev-000\d"', dom)) == 3
    assert dom.count('class="line"') == 3
    assert 'class="anomaly"' in dom
    # anomaly list with the escalation note
    assert "Vibration spike consistent with bearing wear" in dom
    assert "Schedule a spindle inspection" in dom
    assert "no rollouts" in dom
    # the learning loop: a feedback button per anomaly, and the (empty) evaluations
    assert 'data-verdict="true_positive"' in dom and 'data-verdict="false_positive"' in dom
    assert "no retraining yet" in dom
    # without a token the page asks for one instead of failing
    bare = _chromium(tmp_path / "profile-bare", "--dump-dom", f"{base}/").stdout
    assert 'data-state="needs-token"' in bare
    # the token travelled in the fragment and as a bearer header: never into the access log
    log = (tmp_path / "api.log").read_text()
    assert "GET /api/v1/nodes" in log and token not in log


def test_dashboard_screenshot(dashboard: tuple[str, str], tmp_path: Path) -> None:
    base, token = dashboard
    out_dir = Path(os.environ.get("EDGECLOUD_TEST_SCREENSHOT_DIR", tmp_path))
    out_dir.mkdir(parents=True, exist_ok=True)
    shot = out_dir / "dashboard.png"
    done = _chromium(
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1400,1300",
        f"{base}/#token={token}",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000  # a rendered page, not a blank one
    print(f"dashboard screenshot: {shot}")
