"""Registered devices on a real Mosquitto with the dynamic security plugin (issue 16), with
``mosquitto_pub`` / ``mosquitto_sub`` as the devices (not project code), the real cloud API
(a process, on Postgres) and the node's device agent in between.

Covers: a registered device publishes its own telemetry (delivered) and nothing else
(another device's topic refused, subscribing refused, another client id refused); a revoked
device is disconnected and refused; while the node's agent is away the broker keeps the last
applied set, and a device added meanwhile works once the agent is back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlmodel import Session

from edgecloud.bench import rest
from edgecloud.cloud import auth
from edgecloud.cloud.db import make_engine
from edgecloud.cloud.migrations import migrate
from edgecloud.core import pki
from edgecloud.dev.process import wait_until
from edgecloud.dev.stack import Infra
from edgecloud.edge.device_agent import DeviceAgent, maybe_start
from edgecloud.edge.device_settings import DeviceAgentSettings

REGISTRY = "/api/v1/devices/registry"


@dataclass
class Fleet:
    api: str
    operate: dict[str, str]
    node_token: str
    infra: Infra
    tmp: Path

    def add(self, *ids: str, node: str = "n1") -> dict[str, str]:
        body = {"devices": [{"device_id": d, "node_id": node} for d in ids]}
        res = httpx.post(self.api + REGISTRY, json=body, headers=self.operate, timeout=60)
        assert res.status_code == 201, res.text
        return {i["device_id"]: i["password"] for i in res.json()["items"]}

    def agent(self) -> DeviceAgent:
        user, pw = self.infra.mqtt_account("edge-agent")
        settings = DeviceAgentSettings(
            node_id="n1", cloud_api_url=self.api, node_token=self.node_token,
            mqtt_url=f"mqtt://{user}:{pw}@127.0.0.1:{self.infra.mqtt_port}",
            devices_password_file=self.infra.mosquitto.password_file,
            devices_broker_pid_file=self.infra.mosquitto.pid_file,
            devices_state_dir=self.tmp / "agent", desired_wait_s=2, desired_retry_s=0.5,
        )  # fmt: skip
        agent = maybe_start(settings)
        assert agent is not None
        return agent

    def pub(self, device: str, password: str, topic: str, client_id: str | None = None
            ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.infra.mqtt_port), "-V", "5",
             "-q", "1", "-u", device, "-P", password, "-i", client_id or device, "-t", topic,
             "-m", f'{{"device_id": "{device}", "seq": 1, "values": {{"t": 1}}}}'],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    def accepted(self, device: str, password: str) -> bool:
        done = self.pub(device, password, f"devices/{device}/telemetry")
        return done.returncode == 0 and "Not authorized" not in done.stderr

    def sub(self, user: str, password: str, topic: str, client_id: str | None = None,
            wait_s: int = 30) -> subprocess.Popen[str]:  # fmt: skip
        cid = ["-i", client_id] if client_id else []
        return subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.infra.mqtt_port), "-V", "5",
             "-q", "1", "-u", user, "-P", password, *cid, "-t", topic, "-v", "-C", "1",
             "-W", str(wait_s)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


@pytest.fixture
def fleet(pg_url: str, private_infra: Infra, tmp_path: Path) -> Iterator[Fleet]:
    private_infra.mosquitto.start()
    migrate(pg_url)
    engine = make_engine(pg_url)
    with Session(engine) as session:
        operate, _ = auth.create_token(session, "operate", "ops")
        node, _ = auth.create_token(session, "node", "n1", "n1")
    engine.dispose()
    port = rest._free_port()
    proc = rest.start_api(pg_url, port, tmp_path / "api.log")
    try:
        yield Fleet(f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {operate}"}, node,
                    private_infra, tmp_path)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_registered_device_publishes_only_its_own_telemetry(fleet: Fleet) -> None:
    pw = fleet.add("press-01", "press-02")
    agent = fleet.agent()
    try:
        wait_until(lambda: fleet.accepted("press-01", pw["press-01"]), 30, "press-01 applied")
        admin = fleet.infra.mqtt_account("admin")
        watch = fleet.sub(*admin, "devices/+/telemetry")
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; the publish below repeats
        wait_until(lambda: fleet.accepted("press-01", pw["press-01"]) and watch.poll() is not None,
                   30, "press-01's telemetry delivered")  # fmt: skip
        out, _ = watch.communicate(timeout=10)
        assert out.startswith("devices/press-01/telemetry ")
        other = fleet.pub("press-01", pw["press-01"], "devices/press-02/telemetry")
        assert "Not authorized" in other.stderr
        events = fleet.pub("press-01", pw["press-01"], "edgecloud/n1/events/reading")
        assert "Not authorized" in events.stderr
        wrong_id = fleet.pub("press-01", pw["press-01"], "devices/press-01/telemetry", "cam-9")
        assert wrong_id.returncode != 0 and "Not authorized" in wrong_id.stderr
        wrong_pw = fleet.pub("press-01", pw["press-02"], "devices/press-01/telemetry")
        assert wrong_pw.returncode != 0
        spy = fleet.sub("press-01", pw["press-01"], "devices/#", "press-01", wait_s=8)
        time.sleep(1.0)
        assert fleet.accepted("press-02", pw["press-02"])  # press-02 publishes its own
        out, err = spy.communicate(timeout=40)
        assert out == "" and "timed out" in err.lower()  # press-01 reads nobody's telemetry
        assert pw["press-01"] not in fleet.infra.mosquitto.password_file.read_text()
    finally:
        agent.stop()


def test_revoked_device_is_kicked_and_refused(fleet: Fleet) -> None:
    pw = fleet.add("valve-01")
    agent = fleet.agent()
    try:
        wait_until(lambda: fleet.accepted("valve-01", pw["valve-01"]), 30, "valve-01 applied")
        # a connected device: mosquitto_pub -l keeps its connection while stdin is open, and
        # says "not currently connected" for a line sent once the broker has dropped it
        err_path = fleet.tmp / "live.err"
        with err_path.open("w") as err:
            live = subprocess.Popen(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(fleet.infra.mqtt_port), "-q",
                 "1", "-u", "valve-01", "-P", pw["valve-01"], "-i", "valve-01", "-t",
                 "devices/valve-01/telemetry", "-l"],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )  # fmt: skip
        assert live.stdin is not None
        stdin = live.stdin

        def send() -> str:
            try:
                stdin.write("reading\n")
                stdin.flush()
            except BrokenPipeError:
                return "exited"  # the broker dropped it and mosquitto_pub ended
            return err_path.read_text()

        def dropped() -> bool:
            return live.poll() is not None or "not currently connected" in send()

        try:
            time.sleep(1.0)
            assert send() == "" and live.poll() is None  # connected, publishing
            res = httpx.delete(f"{fleet.api}{REGISTRY}/valve-01", headers=fleet.operate, timeout=30)
            assert res.status_code == 200
            wait_until(dropped, 30, "valve-01 disconnected")
            assert not fleet.accepted("valve-01", pw["valve-01"])
            assert "valve-01" not in fleet.infra.mosquitto.password_file.read_text()
        finally:
            live.terminate()
            live.wait(timeout=10)
            stdin.close()
    finally:
        agent.stop()


def test_offline_node_keeps_its_set_and_catches_up(fleet: Fleet) -> None:
    pw = fleet.add("pump-01")
    agent = fleet.agent()
    wait_until(lambda: fleet.accepted("pump-01", pw["pump-01"]), 30, "pump-01 applied")
    agent.stop()
    later = fleet.add("pump-02")  # the node's agent is away
    time.sleep(3)  # longer than the agent's long-poll: it would have applied it by now
    assert not fleet.accepted("pump-02", later["pump-02"])
    assert fleet.accepted("pump-01", pw["pump-01"])  # the broker keeps the last applied set
    agent = fleet.agent()
    try:
        wait_until(lambda: fleet.accepted("pump-02", later["pump-02"]), 30, "pump-02 applied")
        assert fleet.accepted("pump-01", pw["pump-01"])
    finally:
        agent.stop()


def test_five_thousand_devices_in_bulk_are_all_applied(fleet: Fleet) -> None:
    from edgecloud.adapters.dynsec import DynsecControl
    from edgecloud.adapters.mqtt import MqttConfig

    ids = [f"bulk-{i:05d}" for i in range(5000)]
    passwords: dict[str, str] = {}
    for i in range(0, len(ids), 500):  # as `edgecloud device add --from` sends them
        passwords.update(fleet.add(*ids[i : i + 500]))
    assert len(passwords) == 5000
    user, pw = fleet.infra.mqtt_account("edge-agent")
    control = DynsecControl(MqttConfig(port=fleet.infra.mqtt_port, username=user, password=pw))
    control.start()
    agent = fleet.agent()
    try:

        def clients() -> int:
            [answer] = control.send([{"command": "listClients", "count": 1}])
            return int(answer["data"]["totalCount"])

        wait_until(lambda: clients() == 5000, 600, "5,000 devices applied", interval=2.0)
        lines = fleet.infra.mosquitto.password_file.read_text().splitlines()
        assert sum(ln.startswith("bulk-") for ln in lines) == 5000
        for device in (ids[0], ids[2500], ids[-1]):
            assert fleet.accepted(device, passwords[device])
    finally:
        agent.stop()
        control.close()


# --- certificate devices on the TLS listener (MQTT port + 1) --------------------------------


def _cert_files(fleet: Fleet, name: str, cert_pem: str, key_pem: str) -> tuple[Path, Path]:
    cert, key = fleet.tmp / f"{name}.pem", fleet.tmp / f"{name}.key"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    return cert, key


def _add_cert_device(fleet: Fleet, device: str) -> tuple[Path, Path, str]:
    """A device with a certificate of the stack's fleet CA, registered with it for n1."""
    issued = pki.issue(pki.load_ca(fleet.infra.mosquitto.ca_dir), device)
    body = {"devices": [{"device_id": device, "node_id": "n1", "cert_pem": issued.cert_pem}]}
    res = httpx.post(fleet.api + REGISTRY, json=body, headers=fleet.operate, timeout=60)
    assert res.status_code == 201, res.text
    cert, key = _cert_files(fleet, device, issued.cert_pem, issued.key_pem or "")
    return cert, key, issued.serial


def _tls_pub(fleet: Fleet, cert: Path, key: Path, topic: str, device: str,
             ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(fleet.infra.mosquitto.tls_port),
         "--cafile", str(fleet.infra.mosquitto.ca_file), "--cert", str(cert), "--key", str(key),
         "-V", "5", "-q", "1", "-t", topic,
         "-m", f'{{"device_id": "{device}", "seq": 1, "values": {{"t": 1}}}}'],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def _tls_accepted(fleet: Fleet, cert: Path, key: Path, device: str) -> bool:
    done = _tls_pub(fleet, cert, key, f"devices/{device}/telemetry", device)
    return done.returncode == 0 and "Not authorized" not in done.stderr


def test_certificate_device_publishes_its_own_telemetry_over_tls(fleet: Fleet) -> None:
    cert, key, _ = _add_cert_device(fleet, "cam-01")
    assert not _tls_accepted(fleet, cert, key, "cam-01")  # not applied yet: no dynsec role
    agent = fleet.agent()
    try:
        wait_until(lambda: _tls_accepted(fleet, cert, key, "cam-01"), 30, "cam-01 applied")
        watch = fleet.sub(*fleet.infra.mqtt_account("admin"), "devices/+/telemetry")
        time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; the publish below repeats
        wait_until(lambda: _tls_accepted(fleet, cert, key, "cam-01") and watch.poll() is not None,
                   30, "cam-01's telemetry delivered")  # fmt: skip
        out, _ = watch.communicate(timeout=10)
        assert out.startswith('devices/cam-01/telemetry {"device_id": "cam-01"')
        other = _tls_pub(fleet, cert, key, "devices/cam-02/telemetry", "cam-01")
        assert "Not authorized" in other.stderr
        events = _tls_pub(fleet, cert, key, "edgecloud/n1/events/reading", "cam-01")
        assert "Not authorized" in events.stderr
        # no certificate at all: the TLS listener refuses the handshake
        bare = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(fleet.infra.mosquitto.tls_port),
             "--cafile", str(fleet.infra.mosquitto.ca_file), "-t", "devices/cam-01/telemetry",
             "-m", "x", "-q", "1"], capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert bare.returncode != 0
    finally:
        agent.stop()


def test_foreign_and_expired_certificates_are_refused(fleet: Fleet) -> None:
    cert, key, _ = _add_cert_device(fleet, "cam-03")
    agent = fleet.agent()
    try:
        wait_until(lambda: _tls_accepted(fleet, cert, key, "cam-03"), 30, "cam-03 applied")
        # the same CN from another CA
        other_ca = pki.init_ca(fleet.tmp / "other-ca")
        foreign = pki.issue(other_ca, "cam-03")
        f_cert, f_key = _cert_files(fleet, "foreign", foreign.cert_pem, foreign.key_pem or "")
        done = _tls_pub(fleet, f_cert, f_key, "devices/cam-03/telemetry", "cam-03")
        assert done.returncode != 0
        # the same CN from the fleet CA, expired yesterday
        ca = pki.load_ca(fleet.infra.mosquitto.ca_dir)
        e_key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        expired = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cam-03")]))
            .issuer_name(ca.cert.subject).public_key(e_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=2)).not_valid_after(now - timedelta(days=1))
            .sign(ca.key, hashes.SHA256())
        )  # fmt: skip
        key_pem = e_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()  # fmt: skip
        cert_pem = expired.public_bytes(serialization.Encoding.PEM).decode()
        x_cert, x_key = _cert_files(fleet, "expired", cert_pem, key_pem)
        done = _tls_pub(fleet, x_cert, x_key, "devices/cam-03/telemetry", "cam-03")
        assert done.returncode != 0
        assert _tls_accepted(fleet, cert, key, "cam-03")  # the valid one still is
    finally:
        agent.stop()


def test_revoked_certificate_device_is_refused(fleet: Fleet) -> None:
    cert, key, serial = _add_cert_device(fleet, "cam-04")
    agent = fleet.agent()
    try:
        wait_until(lambda: _tls_accepted(fleet, cert, key, "cam-04"), 30, "cam-04 applied")
        res = httpx.delete(f"{fleet.api}{REGISTRY}/cam-04", headers=fleet.operate, timeout=30)
        assert res.status_code == 200

        def refused() -> bool:
            done = _tls_pub(fleet, cert, key, "devices/cam-04/telemetry", "cam-04")
            return "Not authorized" in done.stderr

        # its dynsec client is gone (a connected one is disconnected by disableClient) and
        # nothing in the ACL file grants a device: the still-valid certificate publishes nothing
        wait_until(refused, 30, "cam-04 refused")
        spy = fleet.sub(*fleet.infra.mqtt_account("admin"), "devices/cam-04/telemetry", wait_s=5)
        time.sleep(1.0)
        assert refused()
        out, _ = spy.communicate(timeout=30)
        assert out == ""
        # once its serial is in the broker's CRL, the TLS handshake itself fails
        node = {"Authorization": f"Bearer {fleet.node_token}"}
        res = httpx.get(f"{fleet.api}/api/v1/nodes/n1/devices", headers=node, timeout=30)
        assert res.json()["revoked_cert_serials"] == [serial]
        fleet.infra.mosquitto.write_crl(res.json()["revoked_cert_serials"])

        def handshake_fails() -> bool:
            done = _tls_pub(fleet, cert, key, "devices/cam-04/telemetry", "cam-04")
            return done.returncode != 0 and "Not authorized" not in done.stderr

        wait_until(handshake_fails, 30, "cam-04 refused at TLS")
    finally:
        agent.stop()
