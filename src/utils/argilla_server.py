"""A real Argilla server on 127.0.0.1, installed and started by the course (mini profile).

Notebook 02 sends its SFT and DPO records to Argilla so that people can review them.  In
the full profile that is an Argilla Space on Hugging Face (see :mod:`utils.argilla_io`);
in mini, CI and on laptops it is this local server:

* ``argilla-server`` 2.8.0 in **its own virtual environment** (its pins clash with the
  course stack), installed once from ``requirements-argilla-server.txt`` into
  ``~/.cache/curso-llm/argilla-server-<hash>/`` and reused by every clone;
* ``noida-db``, a small third-party binary that speaks the Elasticsearch 8 API (with
  vector search) and Redis, standing in for the search engine and the queue a
  production Argilla uses — test infrastructure, not part of Argilla;
* a SQLite database, a default user ``argilla`` (workspace ``argilla``) with the
  documented local key :data:`LOCAL_API_KEY` and password :data:`LOCAL_PASSWORD`.

Everything listens on 127.0.0.1 only.  Pid, log and data files live in ``build/run/``; the
data survives ``stop`` (annotations are kept), ``reset`` wipes it.  From a shell::

    scripts/argilla_server start    # idempotent; installs on first use, waits until healthy
    scripts/argilla_server status   # exit 0 if healthy, 3 if stopped
    scripts/argilla_server stop     # clean, idempotent
    scripts/argilla_server reset    # stop and delete the server's data

Ports come from ``COURSE_ARGILLA_PORT`` (6900), ``COURSE_ARGILLA_SEARCH_PORT`` (9200)
and ``COURSE_ARGILLA_REDIS_PORT`` (6379), so several clones can run side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from utils.errors import CourseError
from utils.llm_server import _log_tail, _port_busy, _reap
from utils.paths import cache_dir, repo_root, run_dir

HOST = "127.0.0.1"
#: Environment variables that choose the ports, and their defaults.
PORT_ENVS: dict[str, tuple[str, int]] = {
    "port": ("COURSE_ARGILLA_PORT", 6900),
    "search_port": ("COURSE_ARGILLA_SEARCH_PORT", 9200),
    "redis_port": ("COURSE_ARGILLA_REDIS_PORT", 6379),
}
#: Only valid against this local server on 127.0.0.1 (documented in README §Argilla).
LOCAL_API_KEY = "curso-argilla-local-key"
LOCAL_USERNAME = "argilla"
LOCAL_PASSWORD = "curso-argilla-local"
SERVER_VERSION = "2.8.0"
REQUIREMENTS_FILE = "requirements-argilla-server.txt"


class ArgillaServerError(CourseError):
    """The local Argilla server could not be installed, started or reached; says what to do."""


@dataclass(frozen=True)
class ArgillaServerConfig:
    """Where the local server and its search engine listen."""

    port: int = 6900
    search_port: int = 9200
    redis_port: int = 6379
    host: str = HOST

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        """Database and search-engine data of this server (kept across restarts)."""
        return run_dir() / f"argilla-{self.port}"

    @property
    def state_file(self) -> Path:
        return run_dir() / f"argilla_server-{self.port}.json"

    @property
    def log_file(self) -> Path:
        return run_dir() / f"argilla_server-{self.port}.log"

    @property
    def search_log_file(self) -> Path:
        return run_dir() / f"argilla_search-{self.port}.log"


@dataclass(frozen=True)
class ArgillaServerStatus:
    """What runs for the configured port."""

    running: bool  # our processes are alive
    healthy: bool  # the API answers and accepts the local key
    pids: dict[str, int]
    api_url: str
    log_file: Path

    def describe(self) -> str:
        if self.healthy:
            return f"running (pids {self.pids}) at {self.api_url}, user {LOCAL_USERNAME!r}"
        if self.running:
            return f"starting or unhealthy (pids {self.pids}); log: {self.log_file}"
        return "stopped"


def _port(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ArgillaServerError(f"{env}={raw!r} is not a port number; use e.g. {env}={default}.")
    return int(raw)


def default_config() -> ArgillaServerConfig:
    """Ports from ``COURSE_ARGILLA_PORT``, ``COURSE_ARGILLA_SEARCH_PORT``, ``COURSE_ARGILLA_REDIS_PORT``."""
    return ArgillaServerConfig(**{key: _port(env, default) for key, (env, default) in PORT_ENVS.items()})


# --------------------------------------------------------------------------- install


def requirements_path() -> Path:
    return repo_root() / REQUIREMENTS_FILE


def venv_dir() -> Path:
    """The cached virtual environment; its name changes with the requirements file."""
    digest = hashlib.sha256(requirements_path().read_bytes()).hexdigest()[:10]
    return cache_dir() / f"argilla-server-{digest}"


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    with open(cache_dir() / "argilla-server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another clone installing: wait for it
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_installed(log=print) -> Path:
    """Install ``argilla-server`` and ``noida-db`` in their own venv once; return its path.

    The install happens under a file lock and is marked complete only when pip succeeded,
    so an interrupted install is redone and two clones never install at once.

    Raises:
        ArgillaServerError: when pip fails (the message quotes its last lines).
    """
    venv = venv_dir()
    marker = venv / ".complete"
    if marker.is_file():
        return venv
    with _install_lock():
        if marker.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # leftover of an interrupted install
        log(f"Installing argilla-server {SERVER_VERSION} in its own environment ({venv}); "
            "first time only, 2–5 min…")
        base = getattr(sys, "_base_executable", None) or sys.executable
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(requirements_path())],
        ]  # fmt: skip
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True)  # noqa: S603
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise ArgillaServerError(
                    f"Installing the local Argilla server failed ({' '.join(cmd[:4])}…):\n{tail}\n"
                    f"Check network access to PyPI and {REQUIREMENTS_FILE}, then retry."
                )
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
    return venv


def _noida_binary(venv: Path) -> Path:
    matches = sorted((venv / "lib").glob("python*/site-packages/noida_db/noida-db"))
    if not matches:
        raise ArgillaServerError(f"noida-db is missing from {venv}; run `scripts/argilla_server reset` and retry.")
    binary = matches[0]
    binary.chmod(0o755)
    return binary


# --------------------------------------------------------------------------- state and health


def _is_alive(pid: int) -> bool:
    """True if ``pid`` is one of this module's processes (not a zombie, not a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return b"noida-db" in cmdline or b"argilla_server" in cmdline


def _read_state(config: ArgillaServerConfig) -> dict | None:
    try:
        state = json.loads(config.state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state


def _get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 3.0) -> dict | None:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def is_healthy(api_url: str, api_key: str = LOCAL_API_KEY) -> bool:
    """True when ``api_url`` is Argilla 2.8 and accepts ``api_key`` (``/api/v1/me``)."""
    version = _get_json(f"{api_url}/api/v1/version")
    if not version or version.get("version") != SERVER_VERSION:
        return False
    me = _get_json(f"{api_url}/api/v1/me", headers={"X-Argilla-Api-Key": api_key})
    return bool(me) and me.get("username") == LOCAL_USERNAME


def status(config: ArgillaServerConfig | None = None) -> ArgillaServerStatus:
    """Whether the course's server runs for ``config.port`` and answers."""
    config = config or default_config()
    state = _read_state(config)
    pids = {name: int(pid) for name, pid in (state or {}).get("pids", {}).items()}
    running = bool(pids) and all(_is_alive(pid) for pid in pids.values())
    return ArgillaServerStatus(
        running=running,
        healthy=running and is_healthy(config.api_url),
        pids=pids,
        api_url=config.api_url,
        log_file=config.log_file,
    )


# --------------------------------------------------------------------------- start / stop


def _server_env(config: ArgillaServerConfig) -> dict[str, str]:
    home = config.data_dir / "home"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(
        ARGILLA_HOME_PATH=str(home),
        ARGILLA_DATABASE_URL=f"sqlite+aiosqlite:///{home}/argilla.db?check_same_thread=False",
        ARGILLA_SEARCH_ENGINE="elasticsearch",
        ARGILLA_ELASTICSEARCH=f"http://{config.host}:{config.search_port}",
        ARGILLA_REDIS_URL=f"redis://{config.host}:{config.redis_port}/0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_OFFLINE="1",
    )
    return env


def _spawn(cmd: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        return subprocess.Popen(  # noqa: S603
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # survives the notebook kernel; stopped as a group
        )  # fmt: skip


def _run_cli(python: Path, args: list[str], config: ArgillaServerConfig, env: dict[str, str]) -> None:
    with open(config.log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} argilla_server {' '.join(args[:3])}\n".encode())
        log.flush()
        proc = subprocess.run(  # noqa: S603
            [str(python), "-m", "argilla_server", *args], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    if proc.returncode != 0:
        raise ArgillaServerError(
            f"`argilla_server {' '.join(args[:3])}` failed. Last log lines ({config.log_file}):\n"
            f"{_log_tail(config.log_file)}"
        )


def _wait_until(
    check, what: str, config: ArgillaServerConfig, pids: dict[str, int], timeout: float,
    children: dict[str, subprocess.Popen] | None = None,
) -> None:
    """Poll ``check`` until it is true; fail early, quoting the log, if a process died.

    ``children`` (processes this call spawned) are checked with ``Popen.poll``, which is
    authoritative; ``pids`` of processes started by someone else are checked in /proc.
    A /proc check alone once reported a freshly started noida-db as dead while it ran.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if children is not None:
            dead = [name for name, proc in children.items() if proc.poll() is not None]
        else:
            dead = [name for name, pid in pids.items() if not _is_alive(pid)]
        if dead:
            code = children[dead[0]].returncode if children is not None else None
            raise ArgillaServerError(
                f"The Argilla {dead[0]} process exited during start-up"
                f"{f' with code {code}' if code is not None else ''}. Last log lines:\n"
                f"{_log_tail(config.search_log_file if dead[0] == 'search' else config.log_file)}"
            )
        time.sleep(0.3)
    raise ArgillaServerError(
        f"{what} did not answer within {timeout:.0f} s. See {config.log_file} and "
        f"{config.search_log_file}, or `scripts/argilla_server reset` and retry."
    )


def start(config: ArgillaServerConfig | None = None, timeout: float = 180.0, log=print) -> ArgillaServerStatus:
    """Install if needed, start the search engine and Argilla, return once healthy.

    Idempotent: a healthy server started earlier for the same port (by ``make test``, a
    notebook or ``scripts/argilla_server``) is reused; a half-dead one is restarted.

    Raises:
        ArgillaServerError: a port is taken by another program, the install fails, or a
            process exits during start-up (the message quotes its log).
    """
    config = config or default_config()
    current = status(config)
    if current.healthy:
        return current
    if current.pids:
        if current.running:  # started by someone else moments ago: give it time
            with contextlib.suppress(ArgillaServerError):
                _wait_until(lambda: is_healthy(config.api_url), "Argilla", config, current.pids, timeout)
                return status(config)
        stop(config)
    for name in ("port", "search_port", "redis_port"):
        port = getattr(config, name)
        if _port_busy(config.host, port):
            env_name = PORT_ENVS[name][0]
            raise ArgillaServerError(
                f"Port {port} is already used by another program, not this course's Argilla "
                f"server. Stop it or choose another port: `export {env_name}={port + 10}`."
            )
    venv = ensure_installed(log=log)
    python = _venv_python(venv)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / "home").mkdir(exist_ok=True)
    env = _server_env(config)
    pids: dict[str, int] = {}
    children: dict[str, subprocess.Popen] = {}
    try:
        search = _spawn(
            [str(_noida_binary(venv)), "start", "--data-dir", str(config.data_dir / "search"),
             "--host", config.host, "--only", "elasticsearch,redis",
             "--elasticsearch-port", str(config.search_port), "--redis-port", str(config.redis_port)],
            config.search_log_file, env,
        )  # fmt: skip
        pids["search"] = search.pid
        children["search"] = search
        _write_state(config, pids)
        _wait_until(lambda: _get_json(f"{env['ARGILLA_ELASTICSEARCH']}/") is not None,
                    "The search engine (noida-db)", config, pids, 60, children)  # fmt: skip
        first_run = not (config.data_dir / "home" / ".initialized").is_file()
        if first_run:  # new data folder: create the tables and the default user once
            log("Preparing the Argilla database (first start of this data folder)…")
            _run_cli(python, ["database", "migrate"], config, env)
            _run_cli(python, ["database", "users", "create_default", "--api-key", LOCAL_API_KEY,
                              "--password", LOCAL_PASSWORD, "--quiet"], config, env)  # fmt: skip
            (config.data_dir / "home" / ".initialized").write_text(time.strftime("%F %T"), encoding="utf-8")
        server = _spawn(
            [str(python), "-m", "argilla_server", "start", "--host", config.host, "--port", str(config.port)],
            config.log_file, env,
        )
        pids["argilla"] = server.pid
        children["argilla"] = server
        _write_state(config, pids)
        _wait_until(lambda: is_healthy(config.api_url), "Argilla", config, pids, timeout, children)
    except BaseException:
        for proc in children.values():  # ours for sure, whatever /proc says
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        stop(config)  # never leave a half-started server behind
        raise
    return status(config)


def _write_state(config: ArgillaServerConfig, pids: dict[str, int]) -> None:
    state = {
        "pids": pids,
        "api_url": config.api_url,
        "search_port": config.search_port,
        "redis_port": config.redis_port,
        "data_dir": str(config.data_dir),
        "started": time.time(),
    }
    config.state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _kill_group(pid: int, timeout: float) -> None:
    if not _is_alive(pid):  # gone already (or the pid now belongs to someone else): nothing to do
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while _is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _reap(pid)
        if not _is_alive(pid):
            return


def stop(config: ArgillaServerConfig | None = None, timeout: float = 15.0) -> bool:
    """Stop the course's Argilla server and its search engine. False if none was running.

    The data stays in ``build/run/argilla-<port>/`` (see :func:`reset`).
    """
    config = config or default_config()
    state = _read_state(config)
    if state is None:
        return False
    pids = {name: int(pid) for name, pid in state.get("pids", {}).items()}
    for name in ("argilla", "search"):  # the server first, then what it depends on
        if name in pids:
            _kill_group(pids[name], timeout)
    config.state_file.unlink(missing_ok=True)
    return bool(pids)


def reset(config: ArgillaServerConfig | None = None) -> None:
    """Stop the server and delete its data (datasets, records, annotations)."""
    config = config or default_config()
    stop(config)
    shutil.rmtree(config.data_dir, ignore_errors=True)


def ensure_running(log=print) -> ArgillaServerStatus:
    """Start the local server for the ports in the environment, unless it already runs."""
    return start(default_config(), log=log)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.argilla_server start|stop|status|reset|logs``."""
    parser = argparse.ArgumentParser(
        prog="scripts/argilla_server",
        description="Install (once), start, check and stop the course's local Argilla server.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "reset", "logs"])
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for start-up")
    args = parser.parse_args(argv)
    try:
        config = default_config()
        if args.command == "start":
            print(start(config, timeout=args.timeout).describe())
            return 0
        if args.command == "stop":
            print("stopped" if stop(config) else "was not running")
            return 0
        if args.command == "reset":
            reset(config)
            print(f"stopped and deleted {config.data_dir}")
            return 0
        if args.command == "logs":
            print(_log_tail(config.log_file, lines=60))
            return 0
        current = status(config)
        print(current.describe())
        return 0 if current.healthy else 3
    except ArgillaServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
