"""A private work folder per notebook run, so that two kernels never delete each other's files.

Notebook 01 starts from scratch each time it runs.  Before, it emptied ``build/nb01/``
with ``shutil.rmtree``; a second kernel running the same notebook then deleted the first
one's live SQLite cache and chunks.  Now each process gets its own folder,
``build/nb01/run-<date>-<pid>/``, and holds a lock on it while it lives.  Folders whose
owner has ended (its lock is free) are removed; folders of live runs are left alone.

.. code-block:: python

    work = private_workdir(build_dir() / "nb01")   # empty, ours until this kernel ends
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import IO

OWNER_FILE = ".owner"
_held: dict[Path, tuple[Path, IO[str]]] = {}  # base folder → (this process's folder, its locked owner file)


def _try_lock(folder: Path) -> IO[str] | None:
    """The owner file of ``folder``, locked by us; ``None`` if a live process holds it."""
    try:
        handle = (folder / OWNER_FILE).open("a+", encoding="utf-8")
    except OSError:  # being deleted by another run's cleanup, or not ours to touch
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the OS when the owner dies
    except OSError:  # held by a live run (or no locks on this file system: then keep it, to be safe)
        handle.close()
        return None
    return handle


def _describe_owner(folder: Path) -> str:
    try:
        owner = json.loads((folder / OWNER_FILE).read_text(encoding="utf-8"))
        return f"proceso {owner['pid']} en {owner['host']}, desde {owner['started']}"
    except (OSError, ValueError, KeyError):
        return "proceso desconocido"


def private_workdir(base: Path | str, *, verbose: bool = True) -> Path:
    """An empty folder under ``base`` that belongs to this process until it ends.

    Calling it again in the same process (re-running the notebook cell) empties and
    returns the same folder.  Folders of runs that have ended are deleted; those of
    runs still alive are kept, and named when ``verbose``.
    """
    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    if base in _held:
        folder, _ = _held[base]
        for child in folder.iterdir():
            if child.name != OWNER_FILE:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    else:
        name = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        staging = base / f".{name}"  # locked before it gets a name that other runs' cleanups look at
        staging.mkdir()
        handle = _try_lock(staging)
        if handle is None:
            raise RuntimeError(f"cannot lock the new folder {staging}")
        handle.truncate(0)
        handle.write(
            json.dumps(
                {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
            )
        )
        handle.flush()
        folder = base / name
        staging.rename(folder)
        _held[base] = (folder, handle)
    for other in sorted(base.glob("run-*")):
        if other == folder or not other.is_dir():
            continue
        lock = _try_lock(other)
        if lock is None:
            if verbose:
                print(
                    f"Otra ejecución de este cuaderno sigue viva ({_describe_owner(other)}) y usa {other}: no se toca."
                )
            continue
        try:
            shutil.rmtree(other, ignore_errors=True)  # its owner has ended: leftovers of an old run
        finally:
            lock.close()
    return folder
