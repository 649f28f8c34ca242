"""MQTT: the subscriber and publisher ports, their paho implementation (the only module that
imports paho), and the choice between it and edgecloud's native client (``mqtt_native``).

``make_subscriber(...)`` / ``make_publisher(...)`` build the implementation that
``MqttConfig.client`` names: ``native`` (the default) or ``paho``. The adapter reads no
environment: roles pass their settings' ``mqtt_client`` / ``mqtt_session_expiry_s``, tools
``core.settings.mqtt_client_options()``.
Both behave the same way:

A subscriber hands each inbound QoS 1 message to the caller together with an ``ack``; the
PUBACK goes to the broker only when the caller calls it (paho manual acks), i.e. after the
caller's next durable write. With a persistent session (MQTT v5, clean_start False and a
session expiry), messages not yet acknowledged are redelivered after a crash or reconnect.

A publisher publishes QoS 1 and can wait for the broker's PUBACKs.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edgecloud.core.errors import Backpressure, ConfigError, TransportError
from edgecloud.core.settings import MQTT_SESSION_EXPIRY_S, MqttSettings

log = logging.getLogger("edgecloud.mqtt")

RECEIVE_MAXIMUM = 65_535
CLIENTS = ("native", "paho")


@dataclass(frozen=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    keepalive_s: int = 30
    # which implementation subscriber()/publisher() build
    client: Literal["native", "paho"] = "native"
    # how long the broker keeps a subscriber's persistent session while it is away
    session_expiry_s: int = MQTT_SESSION_EXPIRY_S

    def __post_init__(self) -> None:
        if self.client not in CLIENTS:
            names = ", ".join(CLIENTS)
            raise ConfigError(f"MQTT client must be one of {names}, not {self.client!r}")
        if not 0 < self.session_expiry_s <= 0xFFFFFFFF:
            raise ConfigError("MQTT session expiry must be between 1 and 4294967295 seconds")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> MqttConfig:
        """``mqtt://user:pass@host:port`` or ``mqtts://...``; keyword overrides win when set."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
        tls = parts.scheme in ("mqtts", "ssl")
        values: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or (8883 if tls else 1883),
            "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "tls": tls,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("client") not in (None, *CLIENTS):
            raise ConfigError(f"MQTT client must be one of {', '.join(CLIENTS)}")
        return cls(**values)


def config_from_settings(s: MqttSettings) -> MqttConfig:
    """The broker connection a role's MQTT settings name (URL, account, TLS files, keepalive,
    client and session expiry); the client id stays the caller's."""
    return MqttConfig.from_url(
        s.mqtt_url,
        username=s.mqtt_username,
        password=s.mqtt_password,
        ca_file=s.mqtt_ca_file,
        cert_file=s.mqtt_cert_file,
        key_file=s.mqtt_key_file,
        keepalive_s=s.mqtt_keepalive_s,
        **s.client_options(),
    )


_PUBACK = 0x40
_READ_CHUNK = 64 * 1024


class _Client(paho.Client):
    """paho's client, reading the socket in chunks.

    paho reads every packet with three or four ``recv`` calls (the command byte, the length
    bytes one by one, the body) and goes back to ``select`` after each packet: for a stream of
    small QoS 1 messages that is most of its CPU. Here ``recv`` fills a buffer of up to 64 KiB
    once per ``loop_read`` and every packet in it is handled before the next ``select``. Only
    one socket read per ``loop_read`` call: the buffer is empty when paho selects again, so no
    data waits in it while ``select`` blocks, and writes (acks, pings) still get their turn.
    """

    _rbuf = b""
    _rpos = 0
    _refills = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            if self._refills <= 0:
                raise BlockingIOError()
            self._refills -= 1
            data = super()._sock_recv(_READ_CHUNK)
            if len(data) <= bufsize:
                return data  # also b"" (connection closed)
            self._rbuf, self._rpos = data, 0
        chunk = self._rbuf[self._rpos : self._rpos + bufsize]
        self._rpos += len(chunk)
        return chunk

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        self._refills = 1
        while True:  # ends at MQTT_ERR_AGAIN: the buffer is empty and the one read is done
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_close(self) -> None:
        self._rbuf, self._rpos = b"", 0  # what was read belongs to the closed connection
        super()._sock_close()

    def send_pubacks(self, mids: list[int]) -> None:
        """PUBACKs of many QoS 1 messages as one write (``ack`` queues one write each)."""
        packet = b"".join([struct.pack("!BBH", _PUBACK, 2, mid) for mid in mids])
        self._packet_queue(_PUBACK, packet, 0, 1)


def _client(config: MqttConfig, client_id: str, *, manual_ack: bool) -> _Client:
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    client.enable_logger(logging.getLogger("paho"))
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    if config.tls or config.ca_file or config.cert_file:
        client.tls_set(
            ca_certs=config.ca_file,
            certfile=config.cert_file,
            keyfile=config.key_file,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=10)
    return client


def _nodelay(client: paho.Client) -> None:
    """paho leaves Nagle on: small QoS 1 packets then wait on delayed ACKs (~1k msg/s)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _connect(client: paho.Client, config: MqttConfig, props: Properties, clean: bool) -> None:
    try:
        client.connect(
            config.host,
            config.port,
            keepalive=config.keepalive_s,
            clean_start=clean,
            properties=props,
        )
    except OSError as exc:
        where = f"{config.host}:{config.port}"
        raise TransportError(f"cannot reach MQTT broker {where}: {exc}") from exc
    _nodelay(client)


@dataclass(slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    mid: int
    qos: int
    retain: bool
    received_at: float
    _sub: Subscriber = field(repr=False)
    _epoch: int = field(repr=False)

    def ack(self) -> None:
        """Send the PUBACK: call once, only after the message is durably stored downstream."""
        self._sub.ack_all((self,))


class Subscriber(Protocol):
    """The subscriber port: a persistent-session QoS 1 subscription with manual acks."""

    connected: threading.Event

    def start(self, wait_s: float = 15.0) -> None: ...
    def get(self, timeout: float) -> InboundMessage | None: ...
    def get_batch(self, max_items: int, window_s: float) -> list[InboundMessage]: ...
    def ack_all(self, messages: Iterable[InboundMessage]) -> None: ...
    def pending(self) -> int: ...
    def stop(self) -> None: ...


class PublishResult(Protocol):
    def is_published(self) -> bool: ...


class Publisher(Protocol):
    """The publisher port: QoS 1 publish, and a wait for the broker's acknowledgements."""

    def start(self, wait_s: float = 15.0) -> None: ...
    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> Any: ...
    def wait(self, infos: Iterable[Any], timeout_s: float = 30.0) -> None: ...
    @property
    def connected(self) -> bool: ...
    def stop(self) -> None: ...


def make_subscriber(
    config: MqttConfig, topics: Iterable[str], *, client_id: str, max_pending: int = 100_000
) -> Subscriber:
    """A subscriber of the implementation ``config.client`` names (not yet started)."""
    if config.client == "paho":
        return PahoSubscriber(config, topics, client_id=client_id, max_pending=max_pending)
    from edgecloud.adapters.mqtt_native import NativeSubscriber

    return NativeSubscriber(config, topics, client_id=client_id, max_pending=max_pending)


def make_publisher(config: MqttConfig, *, client_id: str | None = None) -> Publisher:
    """A publisher of the implementation ``config.client`` names (not yet started)."""
    if config.client == "paho":
        return PahoPublisher(config, client_id=client_id)
    from edgecloud.adapters.mqtt_native import NativePublisher

    return NativePublisher(config, client_id=client_id)


class PahoSubscriber:
    """paho: a persistent-session QoS 1 subscription delivering ``InboundMessage``s to a queue."""

    def __init__(
        self,
        config: MqttConfig,
        topics: Iterable[str],
        *,
        client_id: str,
        max_pending: int = 100_000,
    ) -> None:
        self._config = config
        self._topics = list(topics)
        self._client_id = client_id
        self._queue: queue.Queue[InboundMessage] = queue.Queue(maxsize=max_pending)
        self._client = _client(config, client_id, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self.connected = threading.Event()
        self.connect_error: str | None = None
        # Bumped on every (dis)connect: an ack of a message from an earlier connection is not
        # sent, since its packet id may by now name another message (the broker redelivers the
        # unacked one on the new connection anyway).
        self._epoch = 0

    # paho callbacks run on its network thread
    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.connect_error = str(rc)
            log.error("mqtt connect refused", extra={"reason": str(rc)})
            return
        _nodelay(client)
        self._epoch += 1
        client.subscribe([(t, 1) for t in self._topics])
        self.connect_error = None
        self.connected.set()
        log.info("mqtt subscribed", extra={"topics": self._topics, "client_id": self._client_id})

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connected.clear()
        self._epoch += 1
        log.warning("mqtt disconnected", extra={"reason": str(rc)})

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        # Blocking put is the backpressure: paho stops reading the socket, the broker queues.
        self._queue.put(
            InboundMessage(
                msg.topic, bytes(msg.payload), msg.mid, msg.qos, msg.retain, time.time(),
                self, self._epoch,
            )
        )  # fmt: skip

    def ack_all(self, messages: Iterable[InboundMessage]) -> None:
        """``ack()`` each of ``messages``, their QoS 1 PUBACKs written to the socket at once.

        An ack of a message from an earlier connection is not sent (see ``_epoch``).
        """
        epoch = self._epoch
        mids = []
        for m in messages:
            if m._epoch != epoch or m.qos == 0:
                continue
            if m.qos == 1:
                mids.append(m.mid)
            else:
                self._client.ack(m.mid, m.qos)
        if mids:
            self._client.send_pubacks(mids)

    def start(self, wait_s: float = 15.0) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._config.session_expiry_s
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        _connect(self._client, self._config, props, clean=False)
        self._client.loop_start()
        if not self.connected.wait(wait_s):
            self.stop()
            raise TransportError(
                f"MQTT subscribe to {self._config.host}:{self._config.port} failed: "
                f"{self.connect_error or 'timed out'}"
            )

    def get(self, timeout: float) -> InboundMessage | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def get_batch(self, max_items: int, window_s: float) -> list[InboundMessage]:
        """Up to ``max_items`` messages, waiting at most ``window_s`` after the first one."""
        first = self.get(timeout=window_s)
        if first is None:
            return []
        batch = [first]
        deadline = time.monotonic() + window_s
        while len(batch) < max_items:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    batch.append(self._queue.get_nowait())
                else:
                    batch.append(self._queue.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


class PahoPublisher:
    """paho: QoS 1 publisher; ``wait`` blocks until the broker acknowledged what was published."""

    def __init__(self, config: MqttConfig, *, client_id: str | None = None) -> None:
        self._config = config
        client_id = client_id or f"pub-{uuid.uuid4().hex[:12]}"
        self._client = _client(config, client_id, manual_ack=False)
        # paho rescans every in-flight message on each PUBACK when a window is set (O(n^2));
        # 0 = no client-side window, the broker's queue limits apply instead.
        self._client.max_inflight_messages_set(0)
        self._client.on_connect = self._on_connect
        self._connected = threading.Event()
        self._connect_error: str | None = None

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self._connect_error = str(rc)
        else:
            _nodelay(client)
            self._connected.set()

    def start(self, wait_s: float = 15.0) -> None:
        _connect(self._client, self._config, Properties(PacketTypes.CONNECT), clean=True)  # type: ignore[no-untyped-call]
        self._client.loop_start()
        if not self._connected.wait(wait_s):
            self.stop()
            raise TransportError(
                f"MQTT connect to {self._config.host}:{self._config.port} failed: "
                f"{self._connect_error or 'timed out'}"
            )

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> paho.MQTTMessageInfo:
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise Backpressure("MQTT outgoing queue is full")
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise TransportError(f"MQTT publish to {topic} failed: {paho.error_string(info.rc)}")
        return info

    @staticmethod
    def wait(infos: Iterable[paho.MQTTMessageInfo], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        for info in infos:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError("timed out waiting for MQTT PUBACKs")
            try:
                info.wait_for_publish(timeout=remaining)
            except (RuntimeError, ValueError) as exc:
                raise TransportError(f"MQTT publish failed: {exc}") from exc
            if not info.is_published():
                raise TransportError("timed out waiting for MQTT PUBACKs")

    @property
    def connected(self) -> bool:
        return self._connected.is_set() and self._client.is_connected()

    def stop(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
