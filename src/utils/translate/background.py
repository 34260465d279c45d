"""Run the translation CLI in a child process, and kill it hard (to prove resumes).

The notebook and the tests use this to reproduce what happens when Colab disconnects or a
machine dies: ``kill -9`` gives the process no chance to clean up.

.. code-block:: python

    proc = start_background_run("data/llava_instruct_mini.json", "build/out", "--chunk-size", "8")
    kill_after_chunks(proc, "build/out", chunks=2)    # SIGKILL once 2 chunks are committed
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import utils
from utils.translate.records import TranslateError
from utils.translate.store import read_commit_log


def start_background_run(input_path: Path | str, out_dir: Path | str, *args: str) -> subprocess.Popen[bytes]:
    """Start ``python -m utils.translate run INPUT OUT_DIR ARGS...``; its output goes to ``OUT_DIR.log``."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    src = str(Path(utils.__file__).resolve().parents[1])  # so the child finds `utils` (e.g. in Colab)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "utils.translate", "run", str(input_path), str(out_dir), "--no-progress", *args]
    with open(out_dir.with_suffix(".log"), "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)


def committed_chunks(out_dir: Path | str) -> int:
    """How many chunks the commit log of ``out_dir`` lists as finished (0 if none yet)."""
    try:
        return len({entry["chunk"] for entry in read_commit_log(out_dir)})
    except (OSError, ValueError, KeyError, TranslateError):
        return 0


def kill_after_chunks(
    proc: subprocess.Popen[bytes],
    out_dir: Path | str,
    chunks: int,
    *,
    delay: float = 0.0,
    timeout: float = 600,
    sig: int = signal.SIGKILL,
) -> int:
    """Send ``sig`` (default SIGKILL) to ``proc`` once ``chunks`` chunks are committed (plus
    ``delay`` seconds, to land in the middle of the next chunk), wait for it to exit and
    return how many chunks were committed by then.

    Raises:
        TranslateError: if the process exits first or nothing happens within ``timeout``
            (the message quotes the end of its log).
    """
    deadline = time.monotonic() + timeout
    while committed_chunks(out_dir) < chunks:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log = Path(out_dir).with_suffix(".log")
            tail = log.read_text(encoding="utf-8", errors="replace")[-1500:] if log.exists() else ""
            raise TranslateError(
                f"La ejecución en segundo plano terminó antes de guardar {chunks} bloques. Registro:\n{tail}"
            )
        time.sleep(0.05)
    time.sleep(delay)
    os.kill(proc.pid, sig)
    proc.wait(timeout=timeout)
    return committed_chunks(out_dir)
