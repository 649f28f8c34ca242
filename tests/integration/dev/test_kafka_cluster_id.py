import uuid
from pathlib import Path

import pytest

import edgecloud.dev.kafka as kafka_mod
from edgecloud.dev.base import Ports
from edgecloud.dev.kafka import KafkaService
from edgecloud.dev.kafka_jars import jars_present


@pytest.mark.parametrize("first_byte", [0xF8, 0x10])  # 0xF8: the base64url id starts with "-"
def test_storage_format_takes_any_random_cluster_id(
    tmp_path: Path, first_byte: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random id in 64 starts with '-'; the storage tool must not take it for a flag."""
    if not jars_present():
        pytest.skip("Kafka jars not fetched (make install)")
    fixed = uuid.UUID(bytes=bytes([first_byte]) + bytes(range(1, 16)))
    monkeypatch.setattr(kafka_mod.uuid, "uuid4", lambda: fixed)
    service = KafkaService(tmp_path / "state", Ports.free())
    service.prepare()  # raises ServiceError when the tool refuses its arguments
    meta = (tmp_path / "state" / "kafka" / "data" / "meta.properties").read_text()
    expected = kafka_mod.base64.urlsafe_b64encode(fixed.bytes).decode().rstrip("=")
    assert expected.startswith("-") == (first_byte == 0xF8)
    assert f"cluster.id={expected}" in meta
