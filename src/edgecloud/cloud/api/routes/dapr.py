"""``POST /dapr/rollout-tick``: the route of the ``rollout-tick`` input binding
(``bindings.cron``, ``deploy/dapr/cloud/rollout-tick.yaml``).

daprd calls it on the binding's schedule and the rollout engine (and the node scan) ticks once,
at once; the engine's own timer (``EDGECLOUD_ROLLOUT_TICK_S``) keeps running, so without Dapr
(``dev up --no-dapr``) the job still runs. No bearer token: daprd sends none. With
``EDGECLOUD_DAPR_APP_TOKEN`` set (``dev up`` sets it and gives daprd the same value as
``APP_API_TOKEN``), the call must carry it in ``dapr-api-token``; without it, only a loopback
client may call. A tick is idempotent, so a call too many does no harm but load.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import APIRouter, Header, Request

from edgecloud.cloud.api.deps import StateDep, in_thread
from edgecloud.cloud.api.errors import ApiError, responses
from edgecloud.cloud.api.routes.models import RuntimeDep

router = APIRouter(tags=["dapr"])


def _allowed(expected: str | None, given: str | None, client: str | None) -> bool:
    if expected:
        return given is not None and hmac.compare_digest(given.encode(), expected.encode())
    try:
        return client is not None and ipaddress.ip_address(client).is_loopback
    except ValueError:  # not an address (a test client's name)
        return False


@router.post("/dapr/rollout-tick", responses=responses(401))
async def rollout_tick(
    request: Request,
    state: StateDep,
    rt: RuntimeDep,
    token: Annotated[str | None, Header(alias="dapr-api-token")] = None,
) -> dict[str, int]:
    secret = state.settings.dapr_app_token
    client = request.client.host if request.client else None
    if not _allowed(secret.get_secret_value() if secret else None, token, client):
        raise ApiError(401, "unauthorized", "dapr-api-token missing or wrong")
    await request.body()  # the cron binding's body carries nothing we use
    if rt.settings.rollout_engine:
        await in_thread(rt.tick_once, "dapr")
    return dict(rt.ticks)
