"""What the edge keeps of a reading's tensor values, and what its reading event carries.

``EDGECLOUD_TENSOR_STORE``: ``digest`` (default) keeps per tensor value its dtype, shape and
the sha256 of its raw little-endian bytes in the reading row's ``tensors`` column, never the
bytes; ``blob`` keeps that and the bytes, one ``tensor_blobs`` row per value (deleted with
the reading by retention); ``none`` keeps nothing. ``EDGECLOUD_EVENT_TENSORS=true`` puts each
tensor value, in the binary form (``{"dtype", "shape", "b64"}``), into ``data.tensors`` of the
reading event sent to the cloud; ``values`` (stored and sent) never hold a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import orjson

from edgecloud.core.tensors import encode_binary
from edgecloud.edge.batch import Accepted

TensorStore = Literal["digest", "none", "blob"]


def keep_tensors(accepted: Sequence[Accepted], store: TensorStore, in_event: bool) -> None:
    """Fill ``tensors_json``, ``blobs`` and ``event_tensors_json`` of the readings that carry
    tensor values; readings without any are left as they are (nothing to do, no cost)."""
    for a in accepted:
        tensors = a.reading.tensors
        if not tensors:
            continue
        if store != "none":
            digests = {name: t.digest() for name, t in tensors.items()}
            a.tensors_json = orjson.dumps(digests).decode()
            if store == "blob":
                r = a.reading
                a.blobs = [
                    {"device_id": r.device_id, "seq": r.seq, "name": name, **digests[name],
                     "data": t.raw()}
                    for name, t in tensors.items()
                ]  # fmt: skip
        if in_event:
            forms = {name: encode_binary(t.array) for name, t in tensors.items()}
            a.event_tensors_json = orjson.dumps(forms).decode()
