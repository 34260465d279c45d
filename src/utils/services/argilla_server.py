"""A real Argilla server on 127.0.0.1, installed and started by the course (``scripts/argilla_server``).

``argilla-server`` 2.8.0 in its own virtual environment (its pins clash with the course's),
``noida-db`` standing in for Elasticsearch and Redis, a SQLite database and a default user
with the documented local key, all under :mod:`utils.services.supervisor`.  In the full
profile notebook 02 uses an Argilla Space instead (:mod:`utils.sft_dpo.argilla_io`).  Ports,
usage and guarantees: README §El servidor local and §Servidores locales y secretos.
"""

from __future__ import annotations

import contextlib
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
from dataclasses import dataclass
from pathlib import Path

from utils.core.errors import CourseError
from utils.core.paths import cache_dir, repo_root, run_dir
from utils.core.secrets import service_env
from utils.services import supervisor
from utils.services.cli import SpanishArgumentParser

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
#: Server settings a learner may set on purpose; kept although their names look secret.
SERVER_KEY_ENVS = ("ARGILLA_AUTH_SECRET_KEY",)
#: What our processes' command lines contain (tells them from a reused pid).
_MARKERS = (b"noida-db", b"argilla_server")


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
    def service(self) -> supervisor.Service:
        """Its state, log and lock files (``build/run/argilla_server-<port>.*``) and processes."""
        return supervisor.Service("argilla_server", self.port, _MARKERS)

    @property
    def log_file(self) -> Path:
        return self.service.log_file

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
            return f"en marcha (pids {self.pids}) en {self.api_url}, usuario {LOCAL_USERNAME!r}"
        if self.running:
            return f"arrancando o sin responder (pids {self.pids}); log: {self.log_file}"
        return "parado"


def _port(env: str, default: int) -> int:
    raw = os.environ.get(env, "").strip()
    if not raw:
        return default
    try:
        return supervisor.parse_port(raw, env, default)
    except ValueError as exc:
        raise ArgillaServerError(str(exc)) from None


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


def _install_lock():
    """Another clone installing: wait for it."""
    return supervisor.start_lock(cache_dir() / "argilla-server.lock")


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
        log(f"Instalando argilla-server {SERVER_VERSION} en su propio entorno ({venv}); solo la primera vez, 2–5 min…")
        base = getattr(sys, "_base_executable", None) or sys.executable
        steps = [
            [base, "-m", "venv", str(venv)],
            [str(_venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(requirements_path())],
        ]  # fmt: skip
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
                raise ArgillaServerError(
                    f"Falló la instalación del servidor Argilla local ({' '.join(cmd[:4])}…):\n{tail}\n"
                    f"Comprueba el acceso a PyPI y {REQUIREMENTS_FILE}, y vuelve a intentarlo."
                )
        marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
    return venv


def _noida_binary(venv: Path) -> Path:
    matches = sorted((venv / "lib").glob("python*/site-packages/noida_db/noida-db"))
    if not matches:
        raise ArgillaServerError(
            f"Falta noida-db en {venv}: borra esa carpeta y ejecuta `scripts/argilla_server start` para reinstalarlo."
        )
    binary = matches[0]
    binary.chmod(0o755)
    return binary


# --------------------------------------------------------------------------- state and health


def _holds_ports(config: ArgillaServerConfig, pids: dict[str, int]) -> bool:
    """The recorded processes hold their listening sockets (not some other program)."""
    wanted = {"argilla": (config.port,), "search": (config.search_port, config.redis_port)}
    return all(
        supervisor.owns_port(pids[name], port) for name, ports in wanted.items() if name in pids for port in ports
    )


def _get_json(url: str, headers: dict[str, str] | None = None, timeout: float = 3.0) -> dict | None:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
    state = config.service.read_state()
    pids = {name: int(pid) for name, pid in (state or {}).get("pids", {}).items()}
    running = bool(pids) and all(config.service.alive(pid) for pid in pids.values())
    return ArgillaServerStatus(
        running=running,
        healthy=running
        and set(pids) == {"search", "argilla"}
        and _holds_ports(config, pids)
        and is_healthy(config.api_url),
        pids=pids,
        api_url=config.api_url,
        log_file=config.log_file,
    )


# --------------------------------------------------------------------------- start / stop


def _server_env(config: ArgillaServerConfig) -> dict[str, str]:
    """The environment of the server, its CLI and noida-db: no secrets of the learner's."""
    home = config.data_dir / "home"
    env = service_env(keep=SERVER_KEY_ENVS, drop=("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"))
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


def _run_cli(python: Path, args: list[str], config: ArgillaServerConfig, env: dict[str, str]) -> None:
    with open(config.log_file, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} argilla_server {' '.join(args[:3])}\n".encode())
        log.flush()
        proc = subprocess.run(
            [str(python), "-m", "argilla_server", *args], stdout=log, stderr=subprocess.STDOUT, env=env,
            umask=supervisor.PRIVATE_UMASK, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise ArgillaServerError(
            f"Falló `argilla_server {' '.join(args[:3])}`. Últimas líneas del log ({config.log_file}):\n"
            f"{supervisor.log_tail(config.log_file)}\nSi la base de datos quedó a medias, "
            "`scripts/argilla_server reset` la borra y el siguiente `start` la crea de nuevo."
        )


def _wait_until(
    check,
    what: str,
    config: ArgillaServerConfig,
    pids: dict[str, int],
    timeout: float,
    children: dict[str, subprocess.Popen] | None = None,
) -> None:
    """Poll ``check`` until it is true; fail early, quoting the log, if a process died.

    ``children`` (processes this call spawned) are checked with ``Popen.poll``, which is
    authoritative; ``pids`` of processes started by someone else are checked in /proc.
    A /proc check alone once reported a freshly started noida-db as dead while it ran.
    """

    def dead() -> str | None:
        if children is not None:
            gone = [name for name, proc in children.items() if proc.poll() is not None]
        else:
            gone = [name for name, pid in pids.items() if not config.service.alive(pid)]
        return gone[0] if gone else None

    try:
        ready = supervisor.wait_until(check, dead, timeout, interval=0.3)
    except supervisor.ProcessDied as died:
        name = str(died)
        code = children[name].returncode if children is not None else None
        log = config.search_log_file if name == "search" else config.log_file
        raise ArgillaServerError(
            f"El proceso {name} de Argilla se cerró durante el arranque"
            f"{f' con código {code}' if code is not None else ''}. Últimas líneas del log ({log}):\n"
            f"{supervisor.log_tail(log)}\nCorrige lo que indica el log, o ejecuta "
            "`scripts/argilla_server reset` (borra los datos del servidor) y vuelve a arrancarlo."
        ) from None
    if not ready:
        raise ArgillaServerError(
            f"{what} no respondió en {timeout:.0f} s. Mira {config.log_file} y {config.search_log_file}; "
            "en una máquina lenta, sube el tiempo de espera (`scripts/argilla_server start --timeout 400`), "
            "o ejecuta `scripts/argilla_server reset` y vuelve a intentarlo."
        )


def start(config: ArgillaServerConfig | None = None, timeout: float = 180.0, log=print) -> ArgillaServerStatus:
    """Install if needed, start the search engine and Argilla, return once healthy.

    Idempotent: a healthy server started earlier for the same port (by ``make test``, a
    notebook or ``scripts/argilla_server``) is reused; a half-dead one is restarted.  A
    per-port lock makes simultaneous starts wait for each other instead of racing.

    Raises:
        ArgillaServerError: a port is taken by another program, the install fails, or a
            process exits during start-up (the message quotes its log).
    """
    config = config or default_config()
    with config.service.lock():
        return _start_locked(config, timeout, log)


def _start_locked(config: ArgillaServerConfig, timeout: float, log) -> ArgillaServerStatus:
    current = status(config)
    if current.healthy:
        return current
    if current.pids:
        if current.running:  # started by someone else moments ago: give it time
            with contextlib.suppress(ArgillaServerError):
                _wait_until(lambda: status(config).healthy, "Argilla", config, current.pids, timeout)
                return status(config)
        stop(config)
    for name in ("port", "search_port", "redis_port"):
        port = getattr(config, name)
        if supervisor.port_busy(config.host, port):
            env_name = PORT_ENVS[name][0]
            raise ArgillaServerError(
                f"El puerto {port} ya lo usa otro programa (no es el servidor Argilla del curso). "
                f"Ciérralo o elige otro puerto: `export {env_name}={port + 10}`."
            )
    venv = ensure_installed(log=log)
    python = _venv_python(venv)
    _prepare_data_dir(config)
    env = _server_env(config)
    pids: dict[str, int] = {}
    children: dict[str, subprocess.Popen] = {}
    try:
        search = config.service.spawn(
            [str(_noida_binary(venv)), "start", "--data-dir", str(config.data_dir / "search"),
             "--host", config.host, "--only", "elasticsearch,redis",
             "--elasticsearch-port", str(config.search_port), "--redis-port", str(config.redis_port)],
            env, config.search_log_file,
        )  # fmt: skip
        pids["search"] = search.pid
        children["search"] = search
        _write_state(config, pids)
        _wait_until(lambda: _get_json(f"{env['ARGILLA_ELASTICSEARCH']}/") is not None,
                    "El motor de búsqueda (noida-db)", config, pids, 60, children)  # fmt: skip
        first_run = not (config.data_dir / "home" / ".initialized").is_file()
        if first_run:  # new data folder: create the tables and the default user once
            log("Preparando la base de datos de Argilla (primer arranque de esta carpeta de datos)…")
            _run_cli(python, ["database", "migrate"], config, env)
            _run_cli(python, ["database", "users", "create_default", "--api-key", LOCAL_API_KEY,
                              "--password", LOCAL_PASSWORD, "--quiet"], config, env)  # fmt: skip
            (config.data_dir / "home" / ".initialized").write_text(time.strftime("%F %T"), encoding="utf-8")
        server = config.service.spawn(
            [str(python), "-m", "argilla_server", "start", "--host", config.host, "--port", str(config.port)], env
        )
        pids["argilla"] = server.pid
        children["argilla"] = server
        _write_state(config, pids)
        _wait_until(lambda: is_healthy(config.api_url), "Argilla", config, pids, timeout, children)
        supervisor.make_private(config.data_dir)  # files the services created at start-up
    except BaseException:
        for proc in children.values():  # ours for sure, whatever /proc says
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        stop(config)  # never leave a half-started server behind
        raise
    return status(config)


def _prepare_data_dir(config: ArgillaServerConfig) -> None:
    """Create the data folder private (0700), and make an older one private too."""
    (config.data_dir / "home").mkdir(parents=True, exist_ok=True, mode=0o700)
    supervisor.make_private(config.data_dir)


def _write_state(config: ArgillaServerConfig, pids: dict[str, int]) -> None:
    config.service.write_state(
        {
            "pids": pids,
            "api_url": config.api_url,
            "search_port": config.search_port,
            "redis_port": config.redis_port,
            "data_dir": str(config.data_dir),
            "started": time.time(),
        }
    )


def stop(config: ArgillaServerConfig | None = None, timeout: float = 15.0) -> bool:
    """Stop the course's Argilla server and its search engine. False if none was running.

    The data stays in ``build/run/argilla-<port>/`` (see :func:`reset`).
    """
    config = config or default_config()
    state = config.service.read_state()
    if state is None:
        return False
    pids = {name: int(pid) for name, pid in state.get("pids", {}).items()}
    for name in ("argilla", "search"):  # the server first, then what it depends on
        if name in pids:
            supervisor.kill_group(pids[name], config.service.alive, timeout)
    config.service.clear_state()
    return bool(pids)


def reset(config: ArgillaServerConfig | None = None) -> None:
    """Stop the server and delete its data (datasets, records, annotations)."""
    config = config or default_config()
    with config.service.lock():
        stop(config)
        shutil.rmtree(config.data_dir, ignore_errors=True)


def ensure_running(log=print) -> ArgillaServerStatus:
    """Start the local server for the ports in the environment, unless it already runs."""
    return start(default_config(), log=log)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.services.argilla_server start|stop|status|reset|logs``."""
    parser = SpanishArgumentParser(
        prog="scripts/argilla_server",
        description="Instala (una vez), arranca, comprueba y para el servidor Argilla local del curso.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "reset", "logs"], help="qué hacer")
    parser.add_argument("--timeout", default="180", help="segundos de espera al arrancar (por defecto: 180)")
    args = parser.parse_args(argv)
    try:
        config = default_config()
        if args.command == "start":
            print(start(config, timeout=parser.positive_seconds(args.timeout, "--timeout")).describe())
            return 0
        if args.command == "stop":
            print("parado" if stop(config) else "no estaba en marcha")
            return 0
        if args.command == "reset":
            reset(config)
            print(f"parado; datos borrados ({config.data_dir})")
            return 0
        if args.command == "logs":
            print(config.service.log_tail(lines=60))
            return 0
        current = status(config)
        print(current.describe())
        return 0 if current.healthy else 3
    except (ArgillaServerError, KeyboardInterrupt) as exc:
        return parser.fail(exc)


if __name__ == "__main__":
    sys.exit(main())
