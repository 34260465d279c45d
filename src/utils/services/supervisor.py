"""One small process supervisor for the local services (llama.cpp server, Argilla, Ray).

Each service runs in its own process group (``start_new_session``), detached from the
notebook, with a state (pid) file, a log file and a lock file in ``build/run/``.  This
module is what the three service modules share:

* :class:`Service` — one service on one port: its files, how to tell its processes, its
  state file (a stale one is removed), its start lock and :meth:`Service.spawn`;
* :func:`is_alive` — a pid is alive, not a zombie, and is *our* program (its command line
  carries a marker), so a reused pid is never mistaken for the service;
* :func:`start_lock` — one ``start`` per port at a time: two simultaneous starts never race
  to bind the same port (the loser used to overwrite the pid file and orphan the winner);
* :func:`owns_port` — the recorded pid (or a process of its group) holds the listening
  socket, read from ``/proc/net/tcp``; :func:`port_owners` finds who holds a port;
* :func:`spawn` — the service in a new session, with a scrubbed environment
  (:func:`utils.core.secrets.service_env`) and ``umask 077``;
* :func:`wait_until` and :func:`kill_group` — the start-up wait and the TERM-then-KILL stop;
  :func:`descendants` finds the children that left the group (Ray's workers);
* :func:`parse_port` — a port from a command line or an environment variable, or a clean
  Spanish message.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.core.paths import run_dir
from utils.core.secrets import mask_credentials

#: Files a service creates are private to the user (data bases, control files with tokens).
PRIVATE_UMASK = 0o077


# --------------------------------------------------------------------------- processes


def is_alive(pid: int, markers: Sequence[bytes] | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and its command line contains one of ``markers`` (if given)."""
    if pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return markers is None or any(marker in cmdline for marker in markers)


def _process_stats() -> Iterator[tuple[int, list[str]]]:
    """``(pid, fields after the command name)`` of every process: state, ppid, pgrp, …"""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                yield int(entry.name), (entry / "stat").read_text().rsplit(")", 1)[-1].split()


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid`` (the service and any child it forked)."""
    return [pid for pid, fields in _process_stats() if int(fields[2]) == pgid]


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren… (found by parent pid: they may have left its group)."""
    children: dict[int, list[int]] = {}
    for child, fields in _process_stats():
        children.setdefault(int(fields[1]), []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state on TCP ``port`` (IPv4 and IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def port_owners(port: int) -> list[int]:
    """Pids (of this user) holding a listening socket on ``port``; empty if none or unknown."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    return sorted(int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _holds(int(p.name), inodes))


def owns_port(pid: int, port: int) -> bool:
    """True if ``pid`` or a process of its group holds the listening socket on ``port``."""
    inodes = _listening_inodes(port)
    return bool(inodes) and any(_holds(member, inodes) for member in {pid, *group_members(pid)})


def port_busy(host: str, port: int) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child (avoids a zombie in tests)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def kill_group(pid: int, alive: Callable[[int], bool], timeout: float = 15.0) -> None:
    """Stop the process group of ``pid``: SIGTERM, wait up to ``timeout`` s, then SIGKILL.

    ``alive`` says whether ``pid`` is still the service (see :func:`is_alive`); a pid that is
    gone, or that now belongs to another program, is left alone.
    """
    if not alive(pid):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.getpgid(pid) == pid:  # a group leader (start_new_session): the whole group
                os.killpg(pid, sig)
            else:  # e.g. a server someone started by hand, adopted by `stop`
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.1)
        reap(pid)
        if not alive(pid):
            return


# --------------------------------------------------------------------------- one service


@dataclass(frozen=True)
class Service:
    """One service on one port: its files in ``build/run/`` and the markers of its processes.

    ``name`` prefixes the files (``build/run/<name>-<port>.json|.log|.lock``); ``markers`` are
    what its command lines contain (see :func:`is_alive`).
    """

    name: str
    port: int
    markers: tuple[bytes, ...]

    @property
    def state_file(self) -> Path:
        return run_dir() / f"{self.name}-{self.port}.json"

    @property
    def log_file(self) -> Path:
        return run_dir() / f"{self.name}-{self.port}.log"

    @property
    def lock_file(self) -> Path:
        return run_dir() / f"{self.name}-{self.port}.lock"

    def alive(self, pid: int) -> bool:
        """True if ``pid`` is one of this service's processes (not a zombie, not a reused pid)."""
        return is_alive(pid, self.markers)

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """One ``start`` (or ``reset``) of this service at a time."""
        return start_lock(self.lock_file)

    def read_state(self) -> dict | None:
        """The state file's content; None if missing, unreadable, or its ``pid`` is gone (then removed)."""
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if "pid" in state and not self.alive(int(state["pid"])):
            self.clear_state()  # stale: the process is gone
            return None
        return state

    def write_state(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")

    def clear_state(self) -> None:
        self.state_file.unlink(missing_ok=True)

    def log_tail(self, lines: int = 15) -> str:
        return log_tail(self.log_file, lines)

    def spawn(self, cmd: Sequence[str], env: Mapping[str, str], log_path: Path | None = None) -> subprocess.Popen:
        """:func:`spawn` ``cmd`` (log: ``log_path`` or :attr:`log_file`) and wait up to 10 s for its exec.

        Until the exec, ``/proc/<pid>/cmdline`` still shows this process, and :meth:`alive` would
        call the new service dead.
        """
        proc = spawn(cmd, log_path or self.log_file, env)
        deadline = time.monotonic() + 10
        while proc.poll() is None and not self.alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc


def env_port(env: str, default: int, parse: Callable[[str, str], int]) -> int:
    """The port in environment variable ``env`` through ``parse(raw, env)``, or ``default`` if unset."""
    raw = os.environ.get(env, "").strip()
    return parse(raw, env) if raw else default


# --------------------------------------------------------------------------- start-up


@contextlib.contextmanager
def start_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a second ``start`` of the same service waits)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def spawn(cmd: Sequence[str], log_path: Path, env: Mapping[str, str]) -> subprocess.Popen:
    """Start ``cmd`` in its own session, output appended to ``log_path``, files private (umask 077)."""
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(cmd), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=dict(env),
            start_new_session=True,  # survives the notebook kernel; stopped as a group
            umask=PRIVATE_UMASK,
        )  # fmt: skip


def wait_until(
    check: Callable[[], bool], dead: Callable[[], str | None], timeout: float, interval: float = 0.25
) -> bool:
    """Poll ``check`` until it is true (→ True) or ``timeout`` s pass (→ False).

    ``dead`` is asked between polls; when it returns a reason, waiting is pointless and
    :class:`ProcessDied` carries that reason to the caller.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        reason = dead()
        if reason is not None:
            raise ProcessDied(reason)
        time.sleep(interval)
    return False


class ProcessDied(Exception):
    """A service process exited while :func:`wait_until` waited for it (internal signal)."""


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` of a log file, with any ``user:key@`` in URLs masked."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(sin log)"
    return mask_credentials("\n".join(text.splitlines()[-lines:]))


def make_private(root: Path) -> None:
    """``chmod`` ``root`` and everything under it: folders 0700, files 0600 (data of older runs)."""
    if not root.exists():
        return
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            if path.is_symlink():
                continue
            path.chmod(0o700 if path.is_dir() else 0o600)


# --------------------------------------------------------------------------- ports


def parse_port(raw: object, source: str, example: int) -> int:
    """``raw`` as a TCP port (1–65535), or :class:`ValueError` with a Spanish message naming ``source``.

    ``source`` is what the learner typed it into (``--port``, ``COURSE_LLM_PORT``…).
    """
    text = str(raw).strip()
    if text.isascii() and text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    hint = f"`export {source}={example}`" if source.isupper() else f"`{source} {example}`"
    raise ValueError(
        f"{source}={text!r} no es un número de puerto válido: debe ser un entero entre 1 y 65535. "
        f"Usa, por ejemplo, {hint}."
    )
