"""Process plumbing for the local stack: detached spawn, pid files, readiness polls, stop.

Services are started in their own session (``start_new_session``) so that they outlive the
command that started them (``dev up`` returns; pytest sessions reuse the test stack) and are
found again through their pid file.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from edgecloud.core.errors import ServiceError

# Exit codes of children of this process that have been reaped (``pid_alive`` reaps them).
_exit_codes: dict[int, int] = {}


def exit_code(pid: int) -> int | None:
    """Exit code of a child we spawned once it has ended; None while it runs (or not ours)."""
    pid_alive(pid)
    return _exit_codes.get(pid)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie (our own children are reaped on the way)."""
    if pid in _exit_codes:
        return False
    with contextlib.suppress(ChildProcessError):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            _exit_codes[pid] = os.waitstatus_to_exitcode(status)
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def read_pid(path: Path, marker: str | None = None) -> int | None:
    """The live pid recorded in ``path``, or None.

    With ``marker``, the process's command line must contain it: after a reboot a stale pid
    file may name an unrelated process, which must never be taken for ours (or signalled).
    """
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    if marker is not None and marker not in cmdline(pid):
        return None
    return pid


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for outgoing
# connections can be taken between choosing a block and binding it (a daprd of a private stack
# once failed so); ports here are only taken by listeners.
_BLOCK_LOW, _BLOCK_HIGH = 20000, 32000


def free_port_block(count: int, attempts: int = 200) -> int:
    """A port ``p`` with ``p .. p + count - 1`` all free to bind on 127.0.0.1, chosen below the
    ephemeral range (for services started later at fixed offsets from ``p``)."""
    rng = random.Random()
    for _ in range(attempts):
        base = rng.randrange(_BLOCK_LOW, _BLOCK_HIGH - count)
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise ServiceError(f"no block of {count} free ports in {_BLOCK_LOW}-{_BLOCK_HIGH}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 20.0,
    what: str = "condition",
    interval: float = 0.2,
    abort: Callable[[], str | None] | None = None,
) -> T:
    """Poll ``predicate`` until it returns a true value, and return that value (the one poll of
    the code base and its tests); ``abort`` returns a reason to give up early."""
    deadline = time.monotonic() + timeout
    while True:
        if value := predicate():
            return value
        if abort is not None and (reason := abort()) is not None:
            raise ServiceError(f"{what}: {reason}")
        if time.monotonic() > deadline:
            raise ServiceError(f"{what}: not ready after {timeout:.0f}s")
        time.sleep(interval)


def spawn(argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` detached (own session, stdin closed, output appended to ``log_path``).

    ``posix_spawn`` rather than ``subprocess.Popen``: the daemons outlive this process, and a
    Popen object of a running child warns when it is garbage-collected.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return os.posix_spawnp(
            argv[0],
            list(argv),
            dict(env) if env is not None else dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, fd, 1),
                (os.POSIX_SPAWN_DUP2, fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(fd)


def terminate(pid: int, sig: int = signal.SIGTERM, timeout: float = 20.0) -> bool:
    """Send ``sig``, wait up to ``timeout``, then SIGKILL. True if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return False
        time.sleep(0.1)
    kill(pid)
    return True


def kill(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL and wait until the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), timeout, f"process {pid} after SIGKILL")


def tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
