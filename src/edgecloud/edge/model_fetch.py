"""Talking to the cloud for the model agent: desired state (ETag, long-poll) and artifact
downloads that resume (HTTP Range) from a ``.part`` file after a crash or a cut."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
from pathlib import Path
from typing import Any

import httpx

from edgecloud.core.errors import SignatureError, TransportError

log = logging.getLogger(__name__)
CHUNK = 256 * 1024


class CloudClient:
    def __init__(self, base_url: str, token: str, node_id: str, timeout_s: float = 10.0) -> None:
        self.node_id = node_id
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, read=90.0),
        )

    def close(self) -> None:
        self._http.close()

    def desired(self, etag: str | None, wait_s: float) -> tuple[str | None, dict[str, Any] | None]:
        """(etag, body), body None when unchanged (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        try:
            res = self._http.get(
                f"/api/v1/nodes/{self.node_id}/desired",
                params={"wait": wait_s} if wait_s else None,
                headers=headers,
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"desired state: {exc}") from exc
        if res.status_code == 304:
            return etag, None
        if res.status_code != 200:
            raise TransportError(f"desired state: HTTP {res.status_code} {res.text[:200]}")
        body: dict[str, Any] = res.json()
        return res.headers.get("etag"), body

    def post_status(self, event_json: str) -> None:
        try:
            res = self._http.post(
                f"/api/v1/nodes/{self.node_id}/model-status",
                content=event_json,
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"model-status: {exc}") from exc
        if res.status_code >= 300:
            raise TransportError(f"model-status: HTTP {res.status_code} {res.text[:200]}")

    def download(self, url: str, sha256: str, dest: Path) -> Path:
        """Fetch ``url`` into ``dest`` (resuming ``dest.part``), checking the sha256."""
        if dest.is_file():
            return dest
        part = dest.with_suffix(".part")
        have = part.stat().st_size if part.is_file() else 0
        headers = {"Range": f"bytes={have}-", "If-Range": f'"{sha256}"'} if have else {}
        if have:
            log.info("resuming the download of %s at byte %d", url, have)
        try:
            with self._http.stream("GET", url, headers=headers) as res:
                if res.status_code == 200:
                    have = 0  # the server sent it all (no range support or a new file)
                elif res.status_code == 416:
                    part.unlink(missing_ok=True)
                    raise TransportError("range not satisfiable; restarting the download")
                elif res.status_code != 206:
                    raise TransportError(f"artifact: HTTP {res.status_code}")
                with part.open("ab" if have else "wb") as f:
                    for chunk in res.iter_bytes(CHUNK):
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise TransportError(f"artifact download cut: {exc}") from exc
        digest = _sha256(part)
        if digest != sha256:
            part.unlink(missing_ok=True)
            raise SignatureError(f"artifact sha256 is {digest}, the cloud said {sha256}")
        part.replace(dest)
        return dest


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def unpack(artifact: Path, folder: Path) -> Path:
    """Extract the artifact tar into ``folder`` (tarfile's ``data`` filter: no links, no
    absolute or escaping paths, no devices); an existing complete folder is reused."""
    done = folder / ".complete"
    if done.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(artifact) as tf:
            tf.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SignatureError(f"artifact is not a valid bundle archive: {exc}") from exc
    (tmp / ".complete").write_text("ok\n")
    tmp.replace(folder)
    return folder
