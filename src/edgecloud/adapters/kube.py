"""The Kubernetes API through the ``kubernetes`` client (the only module importing it).

``Kube`` speaks in plain manifest dicts: server-side apply with a field manager (``dryRun=All``
for a check), get, list by label, delete. Client errors become ``ClusterError`` with the HTTP
status (401 bad token, 403 RBAC, 422 schema...) and the server's own message; a server that
cannot be reached is ``ClusterError`` with ``status=None``. No retries: the CLI answers at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from edgecloud.core.errors import ClusterError, ConfigError

Manifest = dict[str, Any]
T = TypeVar("T")
_REASONS = {
    401: "unauthorized: the server refused the token or certificate (check the kubeconfig)",
    403: "forbidden by RBAC",
}


class Kube:
    """One cluster (a kubeconfig file and context; default: ``$KUBECONFIG``, ~/.kube/config)."""

    def __init__(
        self, kubeconfig: Path | None = None, context: str | None = None, timeout: float = 15.0
    ) -> None:
        configuration = Configuration()
        try:
            kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(kubeconfig) if kubeconfig else None,
                context=context,
                client_configuration=configuration,
                persist_config=False,
            )
        except (ConfigException, OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"kubeconfig {kubeconfig or '(default)'}: {exc}") from exc
        configuration.retries = 0
        self.server = str(configuration.host)
        self.timeout = timeout
        self._api = ApiClient(configuration)
        self._dynamic: DynamicClient | None = None

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def apply(self, obj: Manifest, field_manager: str, dry_run: bool = False) -> Manifest:
        """Server-side apply ``obj``; returns the object as stored (or as it would be)."""
        extra = {"dry_run": "All"} if dry_run else {}
        with self._errors(_what(obj)):
            result = self._resource(obj).server_side_apply(
                body=obj,
                field_manager=field_manager,
                force_conflicts=True,
                _request_timeout=self.timeout,
                **extra,
            )
        return _plain(result)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> Manifest | None:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
        with self._errors(f"{kind} {name}"):
            try:
                result = self._resource(obj).get(
                    name=name, namespace=namespace, _request_timeout=self.timeout
                )
            except NotFoundError:
                return None
        return _plain(result)

    def list(
        self, api_version: str, kind: str, namespace: str | None, selector: str
    ) -> list[Manifest]:
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {}}
        with self._errors(f"list {kind}"):
            result = self._resource(obj).get(
                namespace=namespace, label_selector=selector, _request_timeout=self.timeout
            )
        items: list[Manifest] = _plain(result).get("items", [])
        return items

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        """Delete (background: the garbage collector, where one runs, takes dependents); False
        when it was not there."""
        obj = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}
        with self._errors(f"delete {kind} {name}"):
            try:
                self._resource(obj).delete(
                    name=name,
                    namespace=namespace,
                    body={"propagationPolicy": "Background"},
                    _request_timeout=self.timeout,
                )
            except NotFoundError:
                return False
        return True

    def served(self, api_version: str, kind: str) -> bool:
        """Whether the server knows this kind (a CRD may be missing)."""
        with self._errors(f"discovery of {kind}"):
            try:
                self._resource({"apiVersion": api_version, "kind": kind})
            except ResourceNotFoundError:
                return False
        return True

    def _resource(self, obj: Manifest) -> Any:
        if self._dynamic is None:
            self._dynamic = _call(lambda: DynamicClient(self._api))  # type: ignore[no-untyped-call]
        return self._dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ResourceNotFoundError as exc:
            raise ClusterError(f"{what}: the server does not serve this kind ({exc})") from exc
        except ApiException as exc:
            raise _api_error(what, self.server, exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise ClusterError(f"{self.server}: cannot reach the API server ({exc})") from exc


def _call(fn: Callable[[], T]) -> T:
    """Run ``fn`` translating errors like ``Kube._errors`` (the constructor's discovery)."""
    try:
        return fn()
    except ApiException as exc:
        raise _api_error("discovery", "", exc) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise ClusterError(f"cannot reach the API server ({exc})") from exc


def _api_error(what: str, server: str, exc: ApiException) -> ClusterError:
    status = int(exc.status) if exc.status else None
    message = ""
    try:
        message = str(json.loads(exc.body or "{}").get("message", ""))
    except (ValueError, AttributeError):
        message = str(exc.body or "")[:300]
    reason = _REASONS.get(status or 0, f"HTTP {status} {exc.reason or ''}".strip())
    where = f" ({server})" if server and status == 401 else ""
    return ClusterError(f"{what}: {reason}{where}: {message}".rstrip(": "), status=status)


def _plain(result: Any) -> Manifest:
    out: Manifest = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    return out


def _what(obj: Manifest) -> str:
    meta = obj.get("metadata", {})
    where = f" in {meta['namespace']}" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {meta.get('name')}{where}"
