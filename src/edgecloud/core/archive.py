"""Safe extraction of a bundle archive (tar, tar.gz or zip) into an empty folder: the one
unpacker of the cloud registry (uploads) and the edge model agent (downloaded artifacts).

Every member is checked before a byte is written: regular files and folders only (no symlink,
hard link, device or FIFO), a relative name without ``..`` or a drive, at most ``max_files``
files, and at most ``max_bytes`` in all, counted while writing (header sizes are not trusted,
so a zip bomb stops at the limit). A single top-level folder is stripped, so both
``tar czf b.tgz -C bundle .`` and ``tar czf b.tgz bundle`` work.

Whatever the archive holds, a refusal is an ``UnsafeArchive`` (a 4xx), never an ``OSError``
of the server's file system: a name is at most ``MAX_PART_BYTES`` per part and
``MAX_NAME_BYTES`` in all (longer names fail at ``open`` with errno 36 otherwise), a name that
is a file and a folder (or a file inside a file) is refused before anything is created, and a
truncated or corrupt stream (gzip EOF, bad CRC, unknown zip compression, encryption) is
``not_archive`` whenever it is hit, also in the middle of a member.

Zip members keep their Unix mode in the upper 16 bits of ``external_attr``; archivers that
write none, or only permission bits without a file type (Windows tools, some libraries),
leave the type at 0: such a member is a plain file (a folder when its name ends in ``/``).
Only an explicit type other than file or folder (link, device, FIFO, socket) is refused.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from edgecloud.core.errors import ValidationFailed

CHUNK = 1 << 20
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # the registry's default limits (RegistrySettings)
DEFAULT_MAX_FILES = 16
MAX_PART_BYTES = 255  # NAME_MAX of Linux file systems
MAX_NAME_BYTES = 1024
# what reading a broken member raises: truncated gzip (EOFError, BadGzipFile is an OSError),
# bad deflate data, CRC mismatch, unsupported compression, an encrypted zip member, a zip
# member whose local header name is not UTF-8 though it says so (found by the fuzz target)
_CORRUPT = (tarfile.TarError, EOFError, OSError, zlib.error, zipfile.BadZipFile,
            NotImplementedError, RuntimeError, UnicodeDecodeError)  # fmt: skip


class UnsafeArchive(ValidationFailed):
    """``reason``: not_archive, unsafe_path, link, special_file, too_many_files, too_large."""


def _clean_name(raw: str) -> PurePosixPath:
    if not raw or raw.startswith(("/", "\\")) or "\\" in raw or "\x00" in raw:
        raise UnsafeArchive("unsafe_path", f"member {raw[:120]!r} is not a relative path")
    if len(raw) > 1 and raw[1] == ":":
        raise UnsafeArchive("unsafe_path", f"member {raw[:120]!r} names a drive")
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchive("unsafe_path", f"member {raw[:120]!r} leaves the bundle (..)")
    encoded = raw.encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_NAME_BYTES or any(
        len(p.encode("utf-8", "surrogateescape")) > MAX_PART_BYTES for p in parts
    ):
        raise UnsafeArchive(
            "unsafe_path",
            f"member {raw[:120]!r}... is too long (at most {MAX_PART_BYTES} bytes a part, "
            f"{MAX_NAME_BYTES} in all)",
        )
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _tar_members(tf: tarfile.TarFile) -> Iterator[tuple[PurePosixPath, bool, IO[bytes] | None]]:
    for info in tf:
        name = _clean_name(info.name)
        if info.issym() or info.islnk():
            raise UnsafeArchive("link", f"member {info.name[:120]!r} is a link")
        if info.isdir():
            yield name, True, None
        elif info.isreg():
            yield name, False, tf.extractfile(info)
        else:
            raise UnsafeArchive("special_file", f"member {info.name[:120]!r} is not a file")


def _zip_members(zf: zipfile.ZipFile) -> Iterator[tuple[PurePosixPath, bool, IO[bytes] | None]]:
    for info in zf.infolist():
        name = _clean_name(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no type written, a plain member
        if kind == stat.S_IFLNK:
            raise UnsafeArchive("link", f"member {info.filename[:120]!r} is a link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive("special_file", f"member {info.filename[:120]!r} is not a file")
        if info.is_dir() or kind == stat.S_IFDIR:
            yield name, True, None
        else:
            yield name, False, zf.open(info)


def _members(path: Path) -> Generator[tuple[PurePosixPath, bool, IO[bytes] | None]]:
    try:
        is_zip = zipfile.is_zipfile(path)  # catches OSError only: a crafted end record raises
    except _CORRUPT as exc:  # BadZipFile ("span multiple disks"; found by the fuzz target)
        raise UnsafeArchive("not_archive", f"zip archive is corrupt: {_why(exc)}") from exc
    if is_zip:
        try:
            with zipfile.ZipFile(path) as zf:
                yield from _zip_members(zf)
        except _CORRUPT as exc:
            raise UnsafeArchive("not_archive", f"zip archive is corrupt: {_why(exc)}") from exc
        return
    with path.open("rb") as raw:  # ours to close: tarfile.open(path) leaks it when it fails
        try:
            tf = tarfile.open(fileobj=raw, mode="r:*")  # noqa: SIM115 (closed by the with below)
        except _CORRUPT as exc:
            raise UnsafeArchive(
                "not_archive", "upload is not a tar, tar.gz or zip archive"
            ) from exc
        with tf:
            try:
                yield from _tar_members(tf)
            except _CORRUPT as exc:
                raise UnsafeArchive("not_archive", f"archive is corrupt: {_why(exc)}") from exc


def _why(exc: BaseException) -> str:
    """The library's words without any file name in them (never a server path)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).split(": '/")[0][:200] or type(exc).__name__


def _claim(seen: dict[PurePosixPath, bool], name: PurePosixPath, is_dir: bool) -> None:
    """Record ``name`` (and its parents as folders); refuse a name that is a file and a folder."""
    for parent in reversed(name.parents):
        if parent.parts and seen.setdefault(parent, True) is False:
            raise UnsafeArchive("unsafe_path", f"member {name} is inside {parent}, a file")
    before = seen.get(name)
    if before is not None and (before is False or not is_dir):
        raise UnsafeArchive("unsafe_path", f"member {name} appears twice (as file or folder)")
    seen[name] = is_dir


def _read(src: IO[bytes]) -> bytes:
    try:
        return src.read(CHUNK)
    except _CORRUPT as exc:
        raise UnsafeArchive("not_archive", f"archive is corrupt: {_why(exc)}") from exc


def extract(archive: Path, dest: Path, *, max_bytes: int, max_files: int) -> Path:
    """Extract ``archive`` into the empty folder ``dest``; returns the bundle folder."""
    with contextlib.closing(_members(archive)) as members:  # the archive closed on a refusal
        return _extract_all(members, dest, max_bytes=max_bytes, max_files=max_files)


def _extract_all(
    members: Iterator[tuple[PurePosixPath, bool, IO[bytes] | None]],
    dest: Path,
    *,
    max_bytes: int,
    max_files: int,
) -> Path:
    files = 0
    written = 0
    seen: dict[PurePosixPath, bool] = {}  # name -> is a folder
    for name, is_dir, src in members:
        try:
            if not name.parts:  # "." or "./": PurePosixPath(".").parts is ()
                if is_dir:
                    continue  # the archive's own top folder (``tar -C bundle .``)
                raise UnsafeArchive("unsafe_path", "a file member has an empty name")
            _claim(seen, name, is_dir)
            target = dest.joinpath(*name.parts)
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            files += 1
            if files > max_files:
                raise UnsafeArchive("too_many_files", f"more than {max_files} files in the bundle")
            target.parent.mkdir(parents=True, exist_ok=True)
            assert src is not None
            with target.open("xb") as out:
                while chunk := _read(src):
                    written += len(chunk)
                    if written > max_bytes:
                        raise UnsafeArchive(
                            "too_large", f"bundle unpacks to more than {max_bytes} bytes"
                        )
                    out.write(chunk)
        finally:
            if src is not None:
                src.close()  # also when refused before reading: a zip keeps its file open
    return _bundle_root(dest)


def _bundle_root(dest: Path) -> Path:
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def pack(files: dict[str, Path], out: IO[bytes]) -> None:
    """A deterministic uncompressed tar of ``files`` (arcname -> path): same files, same bytes."""
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for arcname in sorted(files):
            path = files[arcname]
            info = tarfile.TarInfo(arcname)
            info.size = path.stat().st_size
            info.mode = 0o644
            info.mtime = 0
            info.uname = info.gname = ""
            with path.open("rb") as f:
                tf.addfile(info, f)


def pack_folder(folder: Path) -> bytes:
    """A tar.gz of a bundle folder (the CLI's upload body); links are refused here too."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for path in sorted(folder.rglob("*")):
            if path.is_symlink():
                raise UnsafeArchive("link", f"{path} is a link; bundles hold plain files only")
            if path.is_file():
                tf.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
