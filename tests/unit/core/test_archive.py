"""The bundle unpacker against crafted archives: every refusal an ``UnsafeArchive`` with its
reason, never an ``OSError`` of the server's file system, and nothing written outside."""

from __future__ import annotations

import io
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from edgecloud.cloud.api.hardening import duplicate_key
from edgecloud.core.archive import UnsafeArchive, extract


def _tar(members: list[tuple[str, bytes | None]], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tf.addfile(info)
            else:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: list[tuple[str, int, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore", UserWarning)
        for name, mode, data in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _extract(tmp_path: Path, data: bytes) -> Path:
    src = tmp_path / "upload"
    src.write_bytes(data)
    dest = tmp_path / "out"
    dest.mkdir()
    return extract(src, dest, max_bytes=1 << 20, max_files=16)


CASES = {
    "file then folder": (_tar([("b/m", b"x"), ("b/m", None)]), "unsafe_path"),
    "folder then file": (_tar([("b/m", None), ("b/m", b"x")]), "unsafe_path"),
    "file inside a file": (_tar([("b/m", b"x"), ("b/m/x", b"y")]), "unsafe_path"),
    "file twice": (_tar([("m", b"x"), ("./m", b"y")]), "unsafe_path"),
    "300-character name": (_tar([("b/" + "n" * 300, b"x")]), "unsafe_path"),
    "file named '.'": (_zip([(".", 0o100644, b"x")]), "unsafe_path"),
    "truncated tar.gz": (_tar([("m", bytes(range(256)) * 200)])[:300], "not_archive"),
    "zip symlink": (_zip([("m", 0o120777, b"/etc/passwd")]), "link"),
    "zip fifo": (_zip([("m", 0o010644, b"")]), "special_file"),
}


@pytest.mark.parametrize("case", CASES)
def test_crafted_archive_is_refused_with_its_reason(tmp_path: Path, case: str) -> None:
    data, reason = CASES[case]
    with pytest.raises(UnsafeArchive) as err:
        _extract(tmp_path, data)
    assert err.value.reason == reason, err.value.detail
    assert str(tmp_path) not in err.value.detail
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "upload"]


def test_corrupt_zip_member_is_not_archive(tmp_path: Path) -> None:
    noise = bytes((i * 7919) % 251 for i in range(20000))
    data = bytearray(_zip([("m", 0o100644, noise)]))
    data[200:260] = b"\xff" * 60
    with pytest.raises(UnsafeArchive) as err:
        _extract(tmp_path, bytes(data))
    assert err.value.reason == "not_archive"


def test_zip_local_name_not_utf8_is_not_archive(tmp_path: Path) -> None:
    """The local header's name is what ``ZipFile.open`` decodes (UTF-8 when flag bit 11 is set):
    a byte that is no UTF-8 there raised UnicodeDecodeError, a 500, before this was refused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("b/manifest.yaml", b"name: m")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"PK\x03\x04"
    data[30] = 0x9D  # first byte of the local header's file name
    data[7] |= 0x08  # flag bit 11 (0x0800) of the local header: UTF-8 name
    central = data.index(b"PK\x01\x02")
    data[central + 9] |= 0x08  # flag bit 11 (0x0800) of the central directory entry: UTF-8 name
    with pytest.raises(UnsafeArchive) as err:
        _extract(tmp_path, bytes(data))
    assert err.value.reason == "not_archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "upload"]


def test_zip_end_record_of_a_multi_disk_archive_is_not_archive(tmp_path: Path) -> None:
    """``zipfile.is_zipfile`` itself raised BadZipFile ("span multiple disks") for a zip64 end
    locator naming more than one disk: a 500 before this was refused."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("b/manifest.yaml", b"name: m")
    data = buf.getvalue()
    end = data.index(b"PK\x05\x06")
    # a zip64 end-of-central-directory locator right before the end record: 2 disks in all
    locator = b"PK\x06\x07" + (0).to_bytes(4, "little") + (0).to_bytes(8, "little")
    locator += (2).to_bytes(4, "little")
    with pytest.raises(UnsafeArchive) as err:
        _extract(tmp_path, data[:end] + locator + data[end:])
    assert err.value.reason == "not_archive"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "upload"]


def test_zip_member_without_a_file_type_is_a_plain_file(tmp_path: Path) -> None:
    root = _extract(tmp_path, _zip([("b/m", 0o644, b"abc"), ("b/n", 0, b"d")]))
    assert (root / "m").read_bytes() == b"abc" and (root / "n").read_bytes() == b"d"


@pytest.mark.parametrize(
    "body,key",
    [
        (b'{"scope": "read", "scope": "admin"}', "scope"),
        (b'{"a": {"b": 1, "b": 2}}', "b"),
        (b'[{"x": 1}, {"x": 1, "y": 2, "y": 3}]', "y"),
        (b'{"scope": "read"}', None),
        (b"not json", None),
    ],
)
def test_duplicate_key(body: bytes, key: str | None) -> None:
    assert duplicate_key(body) == key
