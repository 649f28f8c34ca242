"""The Dapr adapter: the only module that imports the ``dapr`` SDK (import-linter contract).

``DaprSidecar`` is one app's view of its own daprd (gRPC API through the SDK's ``DaprClient``):
publish to a pub/sub component, invoke an output binding, read a secret. The client is made
lazily and remade after a failure, so an app starts and keeps running while its sidecar is
down or restarting; every SDK / gRPC error is raised as ``TransportError``.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
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
        self, pubsub: str, topic: str, data: bytes, content_type: str = "application/json"
    ) -> None:
        """One message on ``topic``; daprd wraps it in a CloudEvent (its default)."""
        self._call(
            f"publish {pubsub}/{topic}",
            lambda c: c.publish_event(pubsub, topic, data, data_content_type=content_type),
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
