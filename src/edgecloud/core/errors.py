"""The edgecloud error hierarchy.

    EdgecloudError
     +-- ConfigError            bad or missing settings; the process should not start
     +-- ValidationFailed       one input (reading, event, manifest) is not valid
     |    +-- InvalidReading    a device reading; carries a machine-readable ``reason``
     |    +-- InvalidEvent      an event envelope
     |    +-- InvalidManifest   a model bundle manifest
     +-- ModelError             a model cannot be loaded or run
     +-- SignatureError         a bundle's signature or digest does not verify
     +-- TransportError         a broker / database / HTTP peer failed (wraps the SDK error)
     |    +-- Backpressure      the next hop is full; retry later, do not drop
     |    +-- RateLimited       the peer said 429; ``retry_after_s`` when it told us
     |    +-- ClusterError      a Kubernetes API server refused or failed; ``status`` (401, 403...)
     +-- ServiceError           a local service (Postgres, Mosquitto, Kafka) cannot start

Adapters translate SDK exceptions into these with ``raise ... from exc``.
"""

from __future__ import annotations


class EdgecloudError(Exception):
    """Base of every error edgecloud raises on purpose."""


class ConfigError(EdgecloudError):
    pass


class ValidationFailed(EdgecloudError):
    """An input is not valid. ``reason`` is a short stable code, ``detail`` the human text."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class InvalidReading(ValidationFailed):
    pass


class InvalidEvent(ValidationFailed):
    pass


class InvalidManifest(ValidationFailed):
    pass


class ModelError(EdgecloudError):
    pass


class SignatureError(EdgecloudError):
    pass


class TransportError(EdgecloudError):
    pass


class Backpressure(TransportError):
    pass


class RateLimited(TransportError):
    """The peer refused for rate (HTTP 429); ``retry_after_s`` is its hint, if any."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ClusterError(TransportError):
    """A Kubernetes API call failed: ``status`` is its HTTP status (None: not reached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ServiceError(EdgecloudError):
    pass
