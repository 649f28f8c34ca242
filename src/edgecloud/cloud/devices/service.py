"""Registry operations on a session (blocking: routes call them through ``in_thread``).

``add_many`` is all or nothing: every row is checked (id, node, labels, duplicates within
the request and against the table) before one is written, and the rows and their audit
entries go in one transaction. A password is generated here, returned once, and stored only
as its Mosquitto PBKDF2-SHA512 hash (the ``$7$`` lines of a ``password_file``), which is what
the node's agent gets: the broker checks it, nobody can read the password back.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from edgecloud.cloud.db import utcnow
from edgecloud.cloud.devices.tables import DeviceAudit, RegisteredDevice
from edgecloud.core import pki
from edgecloud.core.errors import ValidationFailed

ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's own default for $7$ hashes
MAX_BULK = 10_000


class Duplicate(ValidationFailed):
    """The device id is registered already (or twice in one request)."""


@dataclass(frozen=True)
class NewDevice:
    device_id: str
    node_id: str
    labels: dict[str, str] = field(default_factory=dict)
    cert_pem: str | None = None  # None: a password device


@dataclass(frozen=True)
class Added:
    row: RegisteredDevice
    password: str | None


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """The ``$7$`` line format of ``mosquitto_passwd``: PBKDF2-SHA512, base64 salt and hash."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not ID_RE.fullmatch(value):
        raise ValidationFailed(
            f"bad_{what}_id", f"{what} id {value!r}: 1-64 chars of [A-Za-z0-9._-]"
        )


def _check(dev: NewDevice) -> None:
    check_id(dev.device_id, "device")
    check_id(dev.node_id, "node")
    if len(dev.labels) > 32 or any(
        not ID_RE.fullmatch(k) or not isinstance(v, str) or len(v) > 128
        for k, v in dev.labels.items()
    ):
        raise ValidationFailed("bad_labels", f"{dev.device_id}: labels are up to 32 k=v strings")


def add_many(session: Session, devices: Sequence[NewDevice], actor: str) -> list[Added]:
    if not devices:
        raise ValidationFailed("empty", "no devices given")
    if len(devices) > MAX_BULK:
        raise ValidationFailed("too_many", f"at most {MAX_BULK} devices per request")
    seen: set[str] = set()
    for dev in devices:
        _check(dev)
        if dev.device_id in seen:
            raise Duplicate("duplicate_device", f"{dev.device_id!r} appears twice in the request")
        seen.add(dev.device_id)
    taken = _existing(session, sorted(seen))
    if taken:
        raise Duplicate("duplicate_device", f"registered already: {', '.join(taken[:10])}")
    now = utcnow()
    out: list[Added] = []
    for dev in devices:
        row = RegisteredDevice(
            device_id=dev.device_id,
            node_id=dev.node_id,
            labels=dict(dev.labels),
            auth="password",
            created_by=actor,
            created_at=now,
            changed_at=now,
        )
        password = None
        if dev.cert_pem is not None:
            cert = pki.parse_device_cert(dev.cert_pem, dev.device_id)
            row.auth, row.cert_sha256 = "cert", pki.fingerprint(cert)
            row.cert_serial = format(cert.serial_number, "x")
            row.cert_not_after = cert.not_valid_after_utc
        else:
            password = secrets.token_urlsafe(24)
            row.password_hash = mosquitto_hash(password)
        out.append(Added(row, password))
    session.add_all([a.row for a in out])
    session.add_all(
        [
            DeviceAudit(
                device_id=a.row.device_id,
                action="add",
                actor=actor,
                node_id=a.row.node_id,
                detail={"auth": a.row.auth, "labels": a.row.labels},
                at=now,
            )
            for a in out
        ]
    )
    session.commit()
    return out


def _existing(session: Session, ids: list[str]) -> list[str]:
    found: list[str] = []
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        q = select(RegisteredDevice.device_id).where(col(RegisteredDevice.device_id).in_(chunk))
        found.extend(session.exec(q).all())
    return sorted(found)


def revoke(session: Session, device_id: str, actor: str) -> RegisteredDevice | None:
    """Revoke (idempotent: a revoked device stays revoked, with its first revocation)."""
    row = session.get(RegisteredDevice, device_id)
    if row is None or row.revoked_at is not None:
        return row
    now = utcnow()
    row.revoked_at, row.revoked_by, row.changed_at = now, actor, now
    session.add(row)
    session.add(
        DeviceAudit(
            device_id=device_id,
            action="revoke",
            actor=actor,
            node_id=row.node_id,
            detail={},
            at=now,
        )
    )
    session.commit()
    session.refresh(row)
    return row


def page(
    session: Session, node_id: str | None, after: str | None, limit: int
) -> Sequence[RegisteredDevice]:
    q = select(RegisteredDevice).order_by(col(RegisteredDevice.device_id)).limit(limit)
    if node_id is not None:
        q = q.where(col(RegisteredDevice.node_id) == node_id)
    if after is not None:
        q = q.where(col(RegisteredDevice.device_id) > after)
    return session.exec(q).all()


def audit(session: Session, device_id: str) -> Sequence[DeviceAudit]:
    q = select(DeviceAudit).where(col(DeviceAudit.device_id) == device_id)
    return session.exec(q.order_by(col(DeviceAudit.at), col(DeviceAudit.id))).all()


def node_credentials(session: Session, node_id: str) -> dict[str, Any]:
    """What a node's broker admits: its active devices, hashes and fingerprints only, plus
    the serials of its revoked certificates (for the broker's CRL)."""
    q = select(RegisteredDevice).where(col(RegisteredDevice.node_id) == node_id)
    active: list[dict[str, Any]] = []
    revoked_serials: list[str] = []
    for row in session.exec(q.order_by(col(RegisteredDevice.device_id))).all():
        if row.revoked_at is not None:
            if row.cert_serial:
                revoked_serials.append(row.cert_serial)
            continue
        active.append(
            {
                "device_id": row.device_id,
                "auth": row.auth,
                "password_hash": row.password_hash,
                "cert_sha256": row.cert_sha256,
            }
        )
    return {"node_id": node_id, "devices": active, "revoked_cert_serials": revoked_serials}


def node_version(session: Session, node_id: str) -> dict[str, Any]:
    """The devices' part of the node's desired state: a change moves it (and the ETag)."""
    q = select(func.count(), func.max(RegisteredDevice.changed_at)).where(
        col(RegisteredDevice.node_id) == node_id
    )
    count, newest = session.exec(q).one()
    stamp = newest.isoformat() if isinstance(newest, datetime) else newest
    return {
        "count": int(count or 0),
        "changed_at": stamp,
        "url": f"/api/v1/nodes/{node_id}/devices",
    }
