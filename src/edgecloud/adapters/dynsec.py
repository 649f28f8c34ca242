"""Mosquitto's dynamic security plugin (``mosquitto_dynamic_security.so``), over MQTT.

Commands go as JSON to ``$CONTROL/dynamic-security/v1``; the plugin answers each on
``.../response`` with the ``correlationData`` it was sent. ``DynsecControl.send`` publishes
commands in batches and waits for every answer; an answer with an ``error`` is returned as
such (the caller decides which errors are harmless, e.g. "already exists").
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edgecloud.adapters.mqtt import MqttConfig
from edgecloud.core.errors import TransportError

log = logging.getLogger(__name__)
TOPIC = "$CONTROL/dynamic-security/v1"
BATCH = 100


class DynsecControl:
    def __init__(self, config: MqttConfig, timeout_s: float = 30.0) -> None:
        self._timeout = timeout_s
        self._answers: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._ready = threading.Event()
        client_id = f"edgecloud-dynsec-{uuid.uuid4().hex[:12]}"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        if config.username is not None:
            self._client.username_pw_set(config.username, config.password)
        if config.tls or config.ca_file or config.cert_file:
            self._client.tls_set(config.ca_file, config.cert_file, config.key_file)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._config = config

    def start(self) -> None:
        try:
            self._client.connect(self._config.host, self._config.port, keepalive=30)
        except OSError as exc:
            raise TransportError(f"dynamic security: cannot reach the broker: {exc}") from exc
        self._client.loop_start()
        if not self._ready.wait(self._timeout):
            self.close()
            raise TransportError("dynamic security: no CONNACK / SUBACK from the broker")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            log.error("dynamic security: broker refused the connection: %s", rc)
            return
        client.subscribe(TOPIC + "/response", qos=1)
        self._ready.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        try:
            answers = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("dynamic security: unreadable answer %r", msg.payload[:200])
            return
        with self._cond:
            for answer in answers:
                key = answer.get("correlationData")
                if isinstance(key, str):
                    self._answers[key] = answer
            self._cond.notify_all()

    def send(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every command's answer, in order (``{"command": ..., "error": ...}`` on failure)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(commands), BATCH):
            out.extend(self._batch(commands[i : i + BATCH]))
        return out

    def _batch(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        tag = uuid.uuid4().hex
        keys = [f"{tag}-{n}" for n in range(len(commands))]
        body = [{**c, "correlationData": k} for c, k in zip(commands, keys, strict=True)]
        info = self._client.publish(TOPIC, json.dumps({"commands": body}), qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise TransportError(f"dynamic security: publish failed ({info.rc})")
        with self._cond:
            done = self._cond.wait_for(lambda: all(k in self._answers for k in keys), self._timeout)
            if not done:
                raise TransportError("dynamic security: the plugin did not answer in time")
            return [self._answers.pop(k) for k in keys]
