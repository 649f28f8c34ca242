"""edgecloud's own MQTT 5 client: QoS 1 in with manual acks, QoS 1 out; sockets only.

Why: paho spends about 65 µs of Python per received-and-acknowledged message (measured, see
docs/bridge.md), which caps one process at ~7,400 messages/s on this project's 2-core target.
This client parses every packet of a 256 KiB read in one tight loop (``mqttwire.Reader``) and
writes the PUBACKs of a whole batch in one ``send``.

``NativeSubscriber`` is pull-based: the caller's ``get`` / ``get_batch`` read the socket in the
caller's thread (no network thread, no queue hand-off); a small keeper thread only sends
PINGREQs while the caller is busy elsewhere. A lost connection is re-established from
``get``/``get_batch`` with backoff; messages of an earlier connection are never acknowledged
on a later one (the broker redelivers them on the resumed persistent session).

``NativePublisher`` has one I/O thread that writes what ``publish`` queued (many packets per
``send``), reads PUBACKs, keeps the connection alive and, after a reconnect, resends every
message not yet acknowledged (DUP set): at-least-once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edgecloud.adapters import mqttwire as wire
from edgecloud.core.errors import Backpressure, TransportError

if TYPE_CHECKING:
    from edgecloud.adapters.mqtt import InboundMessage, MqttConfig

log = logging.getLogger("edgecloud.mqtt")

READ_CHUNK = 256 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
PUBLISH_BLOCK_S = 30.0  # longest a publish waits for room in the broker's receive window


class _Conn:
    """One connected socket and its packet reader."""

    def __init__(self, sock: socket.socket, tls: bool) -> None:
        self.sock = sock
        self.tls = tls
        self.reader = wire.Reader()
        self.lock = threading.Lock()  # writes; for TLS also reads (an SSL object is not
        # safe for a read and a write at once from two threads)
        self.last_send = time.monotonic()
        self.closed = False

    def send(self, data: bytes) -> None:
        try:
            with self.lock:
                self.sock.sendall(data)
                self.last_send = time.monotonic()
        except OSError as exc:
            raise TransportError(f"MQTT send failed: {exc}") from exc

    def recv(
        self, timeout: float
    ) -> tuple[list[tuple[str, bytes, int, int, bool, bool]], list[tuple[int, int, bytes]]]:
        """What arrives within ``timeout`` seconds, parsed (nothing if nothing came)."""
        sock = self.sock
        if not (self.tls and sock.pending()):  # type: ignore[attr-defined]
            try:
                ready, _, _ = select.select([sock], [], [], max(timeout, 0.0))
            except (OSError, ValueError) as exc:  # ValueError: select on a closed socket
                raise TransportError(f"MQTT connection lost: {exc}") from exc
            if not ready:
                return [], []
        return self.read_ready()

    def read_ready(
        self,
    ) -> tuple[list[tuple[str, bytes, int, int, bool, bool]], list[tuple[int, int, bytes]]]:
        """One read of a socket known to be readable, parsed."""
        try:
            if self.tls:
                with self.lock:
                    data = self.sock.recv(READ_CHUNK)
            else:
                data = self.sock.recv(READ_CHUNK)
        except OSError as exc:
            raise TransportError(f"MQTT connection lost: {exc}") from exc
        if not data:
            raise TransportError("MQTT connection closed by the broker")
        try:
            return self.reader.feed(data)
        except wire.ProtocolError as exc:
            raise TransportError(f"MQTT protocol error: {exc}") from exc

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.close()


def _open_socket(config: MqttConfig) -> tuple[socket.socket, bool]:
    where = f"{config.host}:{config.port}"
    try:
        sock = socket.create_connection((config.host, config.port), timeout=HANDSHAKE_TIMEOUT_S)
    except OSError as exc:
        raise TransportError(f"cannot reach MQTT broker {where}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tls = bool(config.tls or config.ca_file or config.cert_file)
    if tls:
        ctx = ssl.create_default_context(cafile=config.ca_file)
        if config.cert_file:
            ctx.load_cert_chain(config.cert_file, config.key_file)
        try:
            sock = ctx.wrap_socket(sock, server_hostname=config.host)
        except (OSError, ssl.SSLError) as exc:
            sock.close()
            raise TransportError(f"TLS handshake with {where} failed: {exc}") from exc
    return sock, tls


def _handshake(
    config: MqttConfig, client_id: str, *, clean_start: bool, session_expiry_s: int
) -> tuple[_Conn, wire.Connack, list[tuple[str, bytes, int, int, bool, bool]]]:
    """Connect and wait for CONNACK; returns the connection, the CONNACK and any PUBLISH that
    arrived right behind it (a resumed session's queued messages)."""
    sock, tls = _open_socket(config)
    conn = _Conn(sock, tls)
    where = f"{config.host}:{config.port}"
    try:
        conn.send(
            wire.connect(
                client_id,
                clean_start=clean_start,
                keepalive_s=config.keepalive_s,
                username=config.username,
                password=config.password,
                session_expiry_s=session_expiry_s,
            )
        )
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(f"MQTT broker {where} sent no CONNACK")
            pubs, others = conn.recv(remaining)
            if not others and not pubs:
                continue
            if pubs and not others:
                raise TransportError(f"MQTT broker {where} sent PUBLISH before CONNACK")
            kind, _flags, body = others[0]
            if kind != wire.CONNACK:
                raise TransportError(f"MQTT broker {where} answered CONNECT with packet {kind}")
            try:
                ack = wire.parse_connack(body)
            except wire.ProtocolError as exc:
                raise TransportError(f"bad CONNACK from {where}: {exc}") from exc
            if ack.reason >= 0x80:
                raise TransportError(
                    f"MQTT broker {where} refused the connection: {ack.reason_text}"
                )
            if len(others) > 1:
                raise TransportError(
                    f"MQTT broker {where} sent packet {others[1][0]} before SUBACK"
                )
            return conn, ack, pubs
    except BaseException:
        conn.close()
        raise


class NativeSubscriber:
    """A persistent-session QoS 1 subscription read by the caller (see the module docstring)."""

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
        self._buf: list[InboundMessage] = []
        self._conn: _Conn | None = None
        self._epoch = 0
        self._state = threading.Lock()
        self._read_lock = threading.Lock()
        self.connected = threading.Event()
        self.connect_error: str | None = None
        self._stopped = threading.Event()
        self._next_try = 0.0
        self._delay = 0.5
        self._keeper = threading.Thread(target=self._keep_alive, name="mqtt-keeper", daemon=True)
        del max_pending  # the broker's in-flight window bounds what is buffered here

    # --- connection ----------------------------------------------------------------------
    def _connect(self) -> None:
        from edgecloud.adapters.mqtt import InboundMessage

        conn, ack, early = _handshake(
            self._config,
            self._client_id,
            clean_start=False,
            session_expiry_s=self._config.session_expiry_s,
        )
        try:
            with self._state:
                self._epoch += 1
                epoch = self._epoch
            now = time.time()
            msgs = [
                InboundMessage(t, p, pid, q, r, now, self, epoch) for t, p, pid, q, r, _ in early
            ]
            conn.send(wire.subscribe(1, self._topics, qos=1))
            deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportError("MQTT broker sent no SUBACK")
                pubs, others = conn.recv(remaining)
                now = time.time()
                msgs.extend(
                    InboundMessage(t, p, pid, q, r, now, self, epoch) for t, p, pid, q, r, _ in pubs
                )
                done = False
                for kind, _f, body in others:
                    if kind == wire.SUBACK:
                        _, codes = wire.parse_suback(body)
                        bad = [c for c in codes if c >= 0x80]
                        if bad:
                            raise TransportError(
                                f"MQTT subscription to {self._topics} refused "
                                f"(reason 0x{bad[0]:02x}: {wire.CONNACK_REASONS.get(bad[0], '')})"
                            )
                        done = True
                if done:
                    break
        except BaseException:
            conn.close()
            raise
        with self._state:
            self._conn = conn
        self._buf.extend(msgs)
        self.connect_error = None
        self._delay = 0.5
        self.connected.set()
        log.info(
            "mqtt subscribed",
            extra={
                "topics": self._topics,
                "client_id": self._client_id,
                "session_present": ack.session_present,
                "client": "native",
            },
        )

    def _lost(self, conn: _Conn, why: str) -> None:
        with self._state:
            if self._conn is not conn:
                return
            self._conn = None
            self._epoch += 1
        self.connected.clear()
        conn.close()
        if not self._stopped.is_set():
            log.warning("mqtt disconnected", extra={"reason": why})
            self._next_try = time.monotonic() + self._delay

    def _reconnect(self, timeout: float) -> None:
        wait = self._next_try - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, max(timeout, 0.0)))
            return
        try:
            self._connect()
        except TransportError as exc:
            self.connect_error = str(exc)
            log.warning("mqtt reconnect failed", extra={"error": str(exc)})
            self._next_try = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, 10.0)

    def _keep_alive(self) -> None:
        interval = max(self._config.keepalive_s / 2.0, 0.5)
        while not self._stopped.wait(min(interval / 2, 1.0)):
            conn = self._conn
            if conn is None or time.monotonic() - conn.last_send < interval:
                continue
            try:
                conn.send(wire.PINGREQ_PACKET)
            except TransportError as exc:
                self._lost(conn, str(exc))

    # --- reading -------------------------------------------------------------------------
    def _read(self, timeout: float) -> None:
        """Read once (waiting up to ``timeout``) and buffer what arrived."""
        from edgecloud.adapters.mqtt import InboundMessage

        conn = self._conn
        if conn is None:
            if not self._stopped.is_set():
                self._reconnect(timeout)
            else:
                time.sleep(max(timeout, 0.0))
            return
        try:
            pubs, others = conn.recv(timeout)
        except TransportError as exc:
            self._lost(conn, str(exc))
            return
        epoch = self._epoch
        if pubs:
            now = time.time()
            self._buf.extend(
                [InboundMessage(t, p, pid, q, r, now, self, epoch) for t, p, pid, q, r, _ in pubs]
            )
        for kind, _flags, body in others:
            if kind == wire.DISCONNECT:
                reason, text = wire.parse_disconnect(body)
                self._lost(conn, f"broker sent DISCONNECT 0x{reason:02x} {text}".strip())
            elif kind not in (wire.PINGRESP, wire.SUBACK, wire.PUBACK):
                self._lost(conn, f"unexpected packet type {kind}")

    def start(self, wait_s: float = 15.0) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._connect()
                break
            except TransportError as exc:
                self.connect_error = str(exc)
                refused = "refused" in str(exc)
                if refused or time.monotonic() + self._delay >= deadline:
                    raise TransportError(
                        f"MQTT subscribe to {self._config.host}:{self._config.port} failed: {exc}"
                    ) from exc
                time.sleep(self._delay)
                self._delay = min(self._delay * 2, 10.0)
        self._keeper.start()

    def get(self, timeout: float) -> InboundMessage | None:
        batch = self.get_batch(1, timeout)
        return batch[0] if batch else None

    def get_batch(self, max_items: int, window_s: float) -> list[InboundMessage]:
        """Up to ``max_items`` messages, waiting at most ``window_s`` after the first one."""
        with self._read_lock:
            buf = self._buf
            if not buf:
                deadline = time.monotonic() + window_s
                while not buf:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return []
                    self._read(remaining)
            if len(buf) < max_items:
                deadline = time.monotonic() + window_s
                while len(buf) < max_items:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._read(remaining)
            if len(buf) <= max_items:
                self._buf = []
                return buf
            batch = buf[:max_items]
            del buf[:max_items]
            return batch

    def pending(self) -> int:
        return len(self._buf)

    # --- acks ----------------------------------------------------------------------------
    def ack_all(self, messages: Iterable[InboundMessage]) -> None:
        """PUBACK each QoS 1 message, in one write; messages of an earlier connection are
        skipped (their packet ids may by now name other messages; the broker redelivers)."""
        conn, epoch = self._conn, self._epoch
        if conn is None:
            return
        ids = [m.mid for m in messages if m._epoch == epoch and m.qos == 1]
        if not ids:
            return
        try:
            conn.send(wire.pubacks(ids))
        except TransportError as exc:
            self._lost(conn, str(exc))

    def stop(self) -> None:
        self._stopped.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(TransportError):
                conn.send(wire.DISCONNECT_PACKET)
            self._lost(conn, "stopped")


def read_pubacks(conn: _Conn) -> tuple[list[tuple[int, int]], TransportError | None]:
    """A publisher's read of a readable connection: (packet id, reason code) of each PUBACK in
    order, and what ended the read early (a DISCONNECT, a packet a publisher never gets), to be
    raised once the PUBACKs before it are applied. A PUBLISH raises at once."""
    pubs, others = conn.read_ready()
    if pubs:
        raise TransportError("MQTT broker sent PUBLISH to a publisher")
    acks: list[tuple[int, int]] = []
    for kind, _flags, body in others:
        if kind == wire.PUBACK:
            acks.append(wire.parse_puback(body))
        elif kind == wire.DISCONNECT:
            reason, text = wire.parse_disconnect(body)
            return acks, TransportError(f"broker sent DISCONNECT 0x{reason:02x} {text}".strip())
        elif kind != wire.PINGRESP:
            return acks, TransportError(f"unexpected packet type {kind}")
    return acks, None


def refusal(reason: int) -> TransportError:
    """The error for a PUBACK whose reason code refuses the message (0x80 and above)."""
    why = wire.CONNACK_REASONS.get(reason, "")
    return TransportError(f"MQTT broker refused a publish: reason 0x{reason:02x} {why}".strip())


class PublishInfo:
    """The fate of one published message: ``done`` once the broker acknowledged it."""

    __slots__ = ("done", "mid", "packet", "reason")

    def __init__(self, mid: int, packet: bytes) -> None:
        self.mid = mid
        self.done = False
        self.reason = 0
        self.packet = packet

    def is_published(self) -> bool:
        return self.done and self.reason < 0x80


class NativePublisher:
    """QoS 1 publisher with an I/O thread; ``wait`` blocks until the broker acknowledged."""

    def __init__(self, config: MqttConfig, *, client_id: str | None = None) -> None:
        self._config = config
        self._client_id = client_id or f"pub-{uuid.uuid4().hex[:12]}"
        self._cond = threading.Condition()
        self._inflight: dict[int, PublishInfo] = {}
        self._out: list[bytes] = []
        self._next_id = 1
        self._window = 65_535
        self._conn: _Conn | None = None
        self._connected = threading.Event()
        self._stopped = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def _connect(self) -> None:
        conn, ack, early = _handshake(
            self._config, self._client_id, clean_start=True, session_expiry_s=0
        )
        if early:
            conn.close()
            raise TransportError("MQTT broker sent PUBLISH to a publisher that subscribed nothing")
        with self._cond:
            self._window = max(1, ack.receive_maximum)
            # a new connection: everything not acknowledged goes again, in publish order, DUP
            # set; of what was queued, only QoS 0 packets are not in flight
            resend = [bytes([i.packet[0] | 0x08]) + i.packet[1:] for i in self._inflight.values()]
            self._out = resend + [p for p in self._out if not p[0] & 0x06]
            self._conn = conn
        self._connected.set()

    def start(self, wait_s: float = 15.0) -> None:
        try:
            self._connect()
        except TransportError as exc:
            raise TransportError(
                f"MQTT connect to {self._config.host}:{self._config.port} failed: {exc}"
            ) from exc
        del wait_s
        self._thread.start()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> PublishInfo:
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if qos not in (0, 1):
            raise TransportError("the native MQTT client publishes QoS 0 or 1")
        with self._cond:
            if self._stopped.is_set():
                raise TransportError("MQTT publisher is stopped")
            if qos and len(self._inflight) >= self._window:
                deadline = time.monotonic() + PUBLISH_BLOCK_S
                while len(self._inflight) >= self._window:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopped.is_set():
                        raise Backpressure("MQTT in-flight window is full")
                    self._cond.wait(remaining)
            mid = 0
            if qos:
                mid = self._next_id
                while mid in self._inflight:
                    mid = mid % 65_535 + 1
                self._next_id = mid % 65_535 + 1
            packet = wire.publish(topic, payload, mid, qos)
            info = PublishInfo(mid, packet)
            if qos:
                self._inflight[mid] = info
            else:
                info.done = True
            self._out.append(packet)
            wake = len(self._out) == 1
        if wake:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        return info

    def wait(self, infos: Iterable[PublishInfo], timeout_s: float = 30.0) -> None:
        """Block until every one of ``infos`` is acknowledged; refusals raise TransportError."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            for info in infos:
                while not info.done:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TransportError("timed out waiting for MQTT PUBACKs")
                    self._cond.wait(remaining)
                if info.reason >= 0x80:
                    raise refusal(info.reason)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _lost(self, conn: _Conn, why: str) -> None:
        with self._cond:
            if self._conn is not conn:
                return
            self._conn = None
        self._connected.clear()
        conn.close()
        if not self._stopped.is_set():
            log.warning("mqtt publisher disconnected", extra={"reason": why})

    def _run(self) -> None:
        delay = 0.5
        keep = max(self._config.keepalive_s / 2.0, 0.5)
        while True:
            conn = self._conn
            if conn is None:
                if self._stopped.is_set():
                    break
                try:
                    self._connect()
                    delay = 0.5
                except TransportError as exc:
                    log.warning("mqtt publisher reconnect failed", extra={"error": str(exc)})
                    self._stopped.wait(delay)
                    delay = min(delay * 2, 10.0)
                continue
            with self._cond:
                out, self._out = self._out, []
            try:
                if out:
                    conn.send(b"".join(out))
                elif time.monotonic() - conn.last_send >= keep:
                    conn.send(wire.PINGREQ_PACKET)
                if self._stopped.is_set():
                    conn.send(wire.DISCONNECT_PACKET)
                    self._lost(conn, "stopped")
                    break
                self._read(conn)
            except TransportError as exc:
                self._lost(conn, str(exc))

    def _read(self, conn: _Conn) -> None:
        sock = conn.sock
        timeout = 1.0
        if not (conn.tls and sock.pending()):  # type: ignore[attr-defined]
            try:
                ready, _, _ = select.select([sock.fileno(), self._wake_r], [], [], timeout)
            except (OSError, ValueError) as exc:
                raise TransportError(f"MQTT connection lost: {exc}") from exc
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)
            if sock.fileno() not in ready:
                return
        acks, error = read_pubacks(conn)  # readable: no second select
        acked = False
        with self._cond:
            inflight = self._inflight
            for mid, reason in acks:
                info = inflight.pop(mid, None)
                if info is not None:
                    info.reason = reason
                    info.done = True
                    acked = True
            if error is not None:
                raise error
            if acked:
                self._cond.notify_all()

    def stop(self) -> None:
        self._stopped.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(5.0)
        else:
            conn = self._conn
            if conn is not None:
                self._lost(conn, "stopped")
        with self._cond:
            self._cond.notify_all()
        if not self._thread.is_alive():
            for fd in (self._wake_r, self._wake_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake_r = self._wake_w = -1
