"""The Dapr adapter: the only module that imports the ``dapr`` SDK (import-linter contract).

``DaprSidecar`` is one app's view of its own daprd (gRPC API through the SDK's ``DaprClient``):
publish to a pub/sub component, invoke an output binding, read a secret; ``ConfigurationWatch``
follows keys of a configuration store (current values, then every change). The client is made
lazily and remade after a failure, so an app starts and keeps running while its sidecar is
down or restarting; every SDK / gRPC error is raised as ``TransportError``.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgecloud.core.errors import TransportError


@dataclass(frozen=True)
class DaprConfig:
    http_port: int
    grpc_port: int
    host: str = "127.0.0.1"
    timeout_s: float = 5.0

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"


class DaprSidecar:
    def __init__(self, config: DaprConfig) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.Lock()

    def ready(self) -> bool:
        """daprd answers ``healthz/outbound`` (its components are loaded)."""
        url = f"{self.config.http_url}/v1.0/healthz/outbound"
        try:
            with urllib.request.urlopen(url, timeout=self.config.timeout_s) as response:
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError):
            return False

    def _get(self) -> Any:
        with self._lock:
            if self._client is not None:
                return self._client
            # The SDK's constructor polls the sidecar's health for DAPR_HEALTH_TIMEOUT: ask
            # once ourselves, so a sidecar that is down costs one failed call, not a wait.
            if not self.ready():
                raise TransportError(f"dapr sidecar at {self.config.http_url} is not ready")
            from dapr.clients import DaprClient
            from dapr.conf import settings

            # process-wide SDK settings (its Settings object has no typed attributes)
            for name, value in (
                ("DAPR_HTTP_PORT", self.config.http_port),
                ("DAPR_HEALTH_TIMEOUT", self.config.timeout_s),
                ("DAPR_API_TIMEOUT_SECONDS", self.config.timeout_s),
            ):
                setattr(settings, name, value)
            self._client = DaprClient(address=f"{self.config.host}:{self.config.grpc_port}")
            return self._client

    def _reset(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            # closing a broken channel can raise anything the SDK wraps: nothing left to do
            with contextlib.suppress(Exception):
                client.close()

    def _call(self, what: str, fn: Any) -> Any:
        client = self._get()
        try:
            return fn(client)
        except Exception as exc:  # SDK errors: DaprGrpcError, grpc.RpcError, DaprInternalError
            self._reset()
            raise TransportError(f"dapr {what}: {exc}") from exc

    def publish(
        self,
        pubsub: str,
        topic: str,
        data: bytes,
        content_type: str = "application/json",
        metadata: dict[str, str] | None = None,
    ) -> None:
        """One message on ``topic``; daprd wraps it in a CloudEvent (its default).
        ``metadata``: the component's per-message options (``partitionKey`` of pubsub.kafka)."""
        self._call(
            f"publish {pubsub}/{topic}",
            lambda c: c.publish_event(
                pubsub,
                topic,
                data,
                data_content_type=content_type,
                publish_metadata=metadata or {},
            ),
        )

    def invoke_binding(
        self, name: str, operation: str, data: bytes, metadata: dict[str, str] | None = None
    ) -> bytes:
        response = self._call(
            f"binding {name}",
            lambda c: c.invoke_binding(name, operation, data, binding_metadata=metadata or {}),
        )
        return bytes(response.data or b"")

    def secret(self, store: str, key: str) -> dict[str, str]:
        response = self._call(f"secret {store}/{key}", lambda c: c.get_secret(store, key))
        return dict(response.secret)

    def close(self) -> None:
        self._reset()


class ConfigurationWatch:
    """``keys`` of configuration store ``store`` through the sidecar's gRPC API, on a thread.

    Per connection: open ``SubscribeConfiguration`` (its first answer carries the subscription
    id), then ``GetConfiguration`` for the current values, then every change the stream
    brings; ``on_items`` gets key -> value each time (from this thread). A stream that ends
    (sidecar restarted, killed) is reopened with a backoff and the values are read again;
    ``on_error`` gets each failure (the caller decides what to log).
    """

    def __init__(
        self,
        config: DaprConfig,
        store: str,
        keys: list[str],
        on_items: Callable[[dict[str, str]], None],
        on_error: Callable[[str], None],
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.keys = keys
        self.metadata = metadata or {}
        self._on_items = on_items
        self._on_error = on_error
        self._stopping = threading.Event()
        self._stream: Any = None
        self.connected = threading.Event()  # a subscription is open
        self._thread = threading.Thread(target=self._run, name="dapr-config", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        delay = 0.5
        while not self._stopping.is_set():
            try:
                self._once()
                delay = 0.5
            except Exception as exc:  # grpc.RpcError, TransportError, anything the stub raises
                if self._stopping.is_set():
                    return
                self._on_error(f"{type(exc).__name__}: {exc}"[:300])
            self.connected.clear()
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, 5.0)

    def _once(self) -> None:
        import grpc
        from dapr.proto import api_service_v1, api_v1

        if not DaprSidecar(self.config).ready():
            raise TransportError(f"dapr sidecar at {self.config.http_url} is not ready")
        channel = grpc.insecure_channel(f"{self.config.host}:{self.config.grpc_port}")
        try:
            stub = api_service_v1.DaprStub(channel)  # type: ignore[no-untyped-call]
            stream = stub.SubscribeConfiguration(
                api_v1.SubscribeConfigurationRequest(
                    store_name=self.store, keys=self.keys, metadata=self.metadata
                )
            )
            self._stream = stream
            if self._stopping.is_set():
                return
            responses = iter(stream)
            first = next(responses)  # the subscription id: changes from here on reach us
            # no metadata here: configuration.postgresql turns each metadata pair of a Get into
            # "AND $k = $v" of its query ('pgNotifyChannel' = 'edgecloud_config' is never
            # true), so a Get with the subscription's metadata reads no row at all
            current = stub.GetConfiguration(
                api_v1.GetConfigurationRequest(store_name=self.store, keys=self.keys),
                timeout=self.config.timeout_s,
            )
            self.connected.set()
            self._on_items({k: str(item.value) for k, item in current.items.items()})
            if first.items:
                self._on_items({k: str(item.value) for k, item in first.items.items()})
            for response in responses:
                if response.items:
                    self._on_items({k: str(item.value) for k, item in response.items.items()})
            raise TransportError("configuration stream ended")
        finally:
            self._stream = None
            channel.close()

    def stop(self) -> None:
        self._stopping.set()
        stream = self._stream
        if stream is not None:
            stream.cancel()
        self._thread.join(5.0)


def read_secrets(
    config: DaprConfig, store: str, keys: dict[str, str], ready_timeout_s: float = 30.0
) -> dict[str, str] | None:
    """setting -> value for every secret key of ``keys`` (setting -> key) the store has.

    A key the store lacks is left out (the caller keeps the environment's value); ``None``
    when the sidecar is not ready within ``ready_timeout_s``.
    """
    sidecar = DaprSidecar(config)
    deadline = time.monotonic() + ready_timeout_s
    while not sidecar.ready():
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)
    found: dict[str, str] = {}
    try:
        for setting, key in keys.items():
            try:
                values = sidecar.secret(store, key)
            except TransportError:  # the store has no such key: the environment's value stays
                continue
            if values.get(key):
                found[setting] = values[key]
    finally:
        sidecar.close()
    return found
