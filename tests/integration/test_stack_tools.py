"""Stock tools, not project code, against the stack: mosquitto_pub/sub, kcat, psql."""

from __future__ import annotations

import subprocess

import pytest

from edgecloud.dev.postgres import libpq_url
from edgecloud.dev.stack import Infra


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_mosquitto_pub_sub(stack: Infra, unique_id: str) -> None:
    user, password = stack.mqtt_account("admin")
    auth = ["-h", stack.mqtt_host, "-p", str(stack.mqtt_port), "-u", user, "-P", password]
    topic = f"tools/{unique_id}"
    with subprocess.Popen(
        [
            "mosquitto_sub",
            *auth,
            "-t",
            topic,
            "-q",
            "1",
            "-C",
            "1",
            "-W",
            "20",
            "-i",
            f"s{unique_id}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as sub:
        # Retained: whether sub has subscribed yet or not, it gets the message.
        pub = run(["mosquitto_pub", *auth, "-t", topic, "-q", "1", "-r", "-m", "hello"])
        assert pub.returncode == 0, pub.stderr
        out, _ = sub.communicate(timeout=30)
    assert sub.returncode == 0
    assert out.strip() == "hello"
    run(["mosquitto_pub", *auth, "-t", topic, "-r", "-n"])  # clear the retained message


def test_mosquitto_pub_without_password_is_refused(stack: Infra) -> None:
    if not stack.mqtt_managed:
        pytest.skip("external broker may allow anonymous clients")
    pub = run(
        [
            "mosquitto_pub",
            "-h",
            stack.mqtt_host,
            "-p",
            str(stack.mqtt_port),
            "-t",
            "devices/x/telemetry",
            "-m",
            "{}",
        ]
    )
    assert pub.returncode != 0


def test_kcat_without_credentials_is_refused(stack: Infra) -> None:
    """Debian's kcat links librdkafka 2.0.2, whose SCRAM is refused by Kafka 4.x (a nonce bug
    fixed in librdkafka 2.6.1, confluentinc/librdkafka#4895): it can only show the refusal."""
    if not stack.kafka_client().sasl:
        pytest.skip("an external Kafka without SASL")
    done = run(["kcat", "-L", "-b", stack.kafka_bootstrap, "-m", "5"])
    assert done.returncode != 0
    assert "Failed to acquire metadata" in done.stderr, done.stderr


def test_psql_select_1(pg_url: str) -> None:
    done = run(["psql", libpq_url(pg_url), "-XAtc", "select 1"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
