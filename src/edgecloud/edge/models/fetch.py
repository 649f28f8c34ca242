"""Talking to the cloud for the model agent: desired state (ETag, long-poll) and artifact
downloads that resume (HTTP Range) from a ``.part`` file after a crash or a cut."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import httpx

from edgecloud.core.archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, extract
from edgecloud.core.desired import DesiredState
from edgecloud.core.errors import SignatureError, TransportError
from edgecloud.core.signing import file_sha256

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

    def desired(self, etag: str | None, wait_s: float) -> tuple[str | None, DesiredState | None]:
        """(etag, state), state None when unchanged (304)."""
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
        try:
            state = DesiredState.model_validate_json(res.content)
        except ValueError as exc:  # pydantic's ValidationError: a cloud we do not understand
            raise TransportError(f"desired state: not a desired-state body: {exc}") from exc
        return res.headers.get("etag"), state

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
        digest = file_sha256(part)
        if digest != sha256:
            part.unlink(missing_ok=True)
            raise SignatureError(f"artifact sha256 is {digest}, the cloud said {sha256}")
        part.replace(dest)
        return dest


def unpack(artifact: Path, folder: Path) -> Path:
    """Extract the artifact into ``folder`` with the registry's own checks (``core/archive.py``:
    no links, devices, escaping or over-long names; file count and unpacked bytes bounded while
    writing); an existing complete folder is reused. A refusal is an ``UnsafeArchive``."""
    done = folder / ".complete"
    if done.is_file():
        return folder / done.read_text().strip()
    shutil.rmtree(folder, ignore_errors=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        root = extract(artifact, tmp, max_bytes=DEFAULT_MAX_BYTES, max_files=DEFAULT_MAX_FILES)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / ".complete").write_text(f"{root.relative_to(tmp).as_posix()}\n")
    tmp.replace(folder)
    return folder / root.relative_to(tmp)
