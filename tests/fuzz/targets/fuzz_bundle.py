"""atheris target: the bundle unpacker (``core.archive.extract``).

Any upload either unpacks inside the destination or is refused with ``ValidationFailed`` (a
4xx with a reason); any other exception is a crash, and nothing is ever written outside.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from edgecloud.core.archive import extract
    from edgecloud.core.errors import ValidationFailed

WORK = Path(tempfile.mkdtemp(prefix="fuzz-bundle-"))


def test_one_input(data: bytes) -> None:
    upload = WORK / "upload"
    upload.write_bytes(data)
    dest = WORK / "out" / "bundle"
    if dest.parent.exists():
        shutil.rmtree(dest.parent)
    dest.mkdir(parents=True)
    try:
        root = extract(upload, dest, max_bytes=1 << 20, max_files=16)
    except ValidationFailed as exc:
        assert exc.reason, exc
    else:
        assert root.resolve().is_relative_to(dest.resolve())
    outside = {p.name for p in WORK.iterdir()}
    assert outside <= {"upload", "out"}, outside


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
