"""Start, check and stop a local llama.cpp OpenAI-compatible server (``scripts/llm_server``).

The server is ``llama-cpp-python[server]`` on 127.0.0.1 (port ``COURSE_LLM_PORT``, 8080),
serving the profile's GGUF, under :mod:`utils.services.supervisor`.  Usage and guarantees:
README §Servidor LLM local and §Servidores locales y secretos.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from utils.core.assets import resolve_gguf
from utils.core.errors import CourseError
from utils.core.secrets import mask_credentials, service_env
from utils.core.settings import CourseSettings, get_settings
from utils.services import supervisor
from utils.services.cli import SpanishArgumentParser

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
PORT_ENV = "COURSE_LLM_PORT"
#: The key the local server accepts; llama.cpp does not check it, the client needs one.
LOCAL_API_KEY = "sk-local-llama-cpp"
#: What the server's command line contains (tells our process from a reused pid).
_MARKERS = (b"llama_cpp.server",)


class LLMServerError(CourseError):
    """The local server could not be started or reached; the message says what to do."""


@dataclass(frozen=True)
class ServerConfig:
    """What to serve and where."""

    model_path: Path
    model_alias: str
    port: int = DEFAULT_PORT
    host: str = HOST
    n_ctx: int = 2048

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


@dataclass(frozen=True)
class ServerStatus:
    """What is running on the configured port."""

    running: bool  # our process is alive
    healthy: bool  # it holds the port and answers /v1/models with the expected model
    pid: int | None
    base_url: str
    model_alias: str
    log_file: Path

    def describe(self) -> str:
        url = mask_credentials(self.base_url)
        if self.healthy:
            return f"en marcha (pid {self.pid}) en {url}, modelo {self.model_alias!r}"
        if self.running:
            return f"arrancando o sin responder (pid {self.pid}); log: {self.log_file}"
        return "parado"


def parse_port(raw: object, source: str = "--port") -> int:
    """``raw`` as a port number, or :class:`LLMServerError` in Spanish naming ``source``."""
    try:
        return supervisor.parse_port(raw, source, DEFAULT_PORT)
    except ValueError as exc:
        raise LLMServerError(str(exc)) from None


def port_from_env() -> int:
    """The port from ``COURSE_LLM_PORT`` (default 8080).

    Raises:
        LLMServerError: when the variable is not a valid port number (1–65535).
    """
    return supervisor.env_port(PORT_ENV, DEFAULT_PORT, parse_port)


def default_config(settings: CourseSettings | None = None, port: int | None = None) -> ServerConfig:
    """The server of the active profile (GGUF resolved, port from the environment)."""
    llm = (settings or get_settings()).llm
    return ServerConfig(
        model_path=resolve_gguf(llm.gguf),
        model_alias=llm.model_alias,
        port=port_from_env() if port is None else parse_port(port),
        n_ctx=llm.n_ctx,
    )


def service(port: int) -> supervisor.Service:
    """The server on ``port``: its files in ``build/run/llm_server-<port>.*``."""
    return supervisor.Service("llm_server", port, _MARKERS)


def _read_state(port: int) -> dict | None:
    """The recorded server, or a course server holding ``port`` without a pid file (left by a crash)."""
    server = service(port)
    state = server.read_state()
    if state is None or "pid" not in state:
        orphan = next((pid for pid in supervisor.port_owners(port) if server.alive(pid)), None)
        return {"pid": orphan, "adopted": True} if orphan else None
    return state


def _served_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as response:
            payload = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return [m.get("id", "") for m in payload.get("data", [])]


def status(config: ServerConfig | None = None) -> ServerStatus:
    """Report whether the course's server runs on the configured port and answers.

    Healthy means: the recorded pid is a llama.cpp server, it (or its group) holds the
    listening socket of the port, and ``/v1/models`` lists the expected model.
    """
    config = config or default_config()
    state = _read_state(config.port)
    pid = int(state["pid"]) if state else None
    models = _served_models(config.base_url) if pid and supervisor.owns_port(pid, config.port) else None
    return ServerStatus(
        running=state is not None,
        healthy=bool(models) and config.model_alias in (models or []),
        pid=pid,
        base_url=config.base_url,
        model_alias=config.model_alias,
        log_file=service(config.port).log_file,
    )


def _wait_healthy(config: ServerConfig, is_alive: Callable[[], bool], timeout: float) -> ServerStatus:
    server = service(config.port)
    log = server.log_file
    try:
        ready = supervisor.wait_until(
            lambda: status(config).healthy, lambda: None if is_alive() else "exited", timeout
        )
    except supervisor.ProcessDied:
        server.clear_state()
        raise LLMServerError(
            f"El servidor llama.cpp se cerró durante el arranque. Últimas líneas del log ({log}):\n"
            f"{server.log_tail()}\nCorrige lo que indica el log y vuelve a ejecutar "
            "`scripts/llm_server start` (o la celda)."
        ) from None
    if not ready:
        raise LLMServerError(
            f"El servidor llama.cpp no respondió en {timeout:.0f} s en {config.base_url}. Mira su log "
            f"({log}) o ejecuta `scripts/llm_server stop` y vuelve a intentarlo; en una máquina "
            "lenta, sube el tiempo de espera (`scripts/llm_server start --timeout 300`)."
        )
    return status(config)


def start(config: ServerConfig | None = None, timeout: float = 120.0) -> ServerStatus:
    """Start the server unless it already runs; return once it answers.

    Idempotent: a healthy server started earlier (by a notebook, a test or
    ``scripts/llm_server``) is reused.  A per-port lock makes simultaneous starts wait for
    each other instead of racing for the port.

    Raises:
        LLMServerError: the port is taken by another program, llama-cpp-python is not
            installed, or the server fails to start (the message quotes its log).
    """
    config = config or default_config()
    with service(config.port).lock():
        return _start_locked(config, timeout)


def _start_locked(config: ServerConfig, timeout: float) -> ServerStatus:
    current = status(config)
    if current.healthy:
        return current
    if current.running and current.pid is not None:  # started but still loading
        pid = current.pid
        return _wait_healthy(config, lambda: service(config.port).alive(pid), timeout)
    if supervisor.port_busy(config.host, config.port):
        raise LLMServerError(
            f"El puerto {config.port} ya lo usa otro programa (no es el servidor del curso). "
            f"Ciérralo o elige otro puerto: `export {PORT_ENV}={config.port + 1}`."
        )
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise LLMServerError(
            f"llama-cpp-python[server] no está instalado ({exc}). Ejecuta `make setup` "
            '(o `pip install "llama-cpp-python[server]"`).'
        ) from None
    if not config.model_path.is_file():
        raise LLMServerError(
            f"No se encuentra el modelo {config.model_path}. Ejecuta `make setup` (descarga o "
            "convierte el GGUF del perfil) y vuelve a intentarlo."
        )

    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(config.model_path),
        "--model_alias", config.model_alias,
        "--host", config.host,
        "--port", str(config.port),
        "--n_ctx", str(config.n_ctx),
    ]  # fmt: skip
    server = service(config.port)
    proc = server.spawn(cmd, service_env())
    state = {**asdict(config), "pid": proc.pid, "started": time.time(), "log": str(server.log_file)}
    server.write_state({**state, "model_path": str(config.model_path)})
    try:
        return _wait_healthy(config, lambda: proc.poll() is None, timeout)
    except BaseException:
        stop(config.port)  # never leave a half-started server behind
        raise


def stop(port: int | None = None, timeout: float = 15.0) -> bool:
    """Stop the course's server on ``port`` (default: ``COURSE_LLM_PORT`` or 8080).

    A course server that holds the port without a pid file (left by a crash) is stopped
    too.  Returns False if none was running there.
    """
    port = port_from_env() if port is None else parse_port(port)
    state = _read_state(port)
    if state is None:
        return False
    server = service(port)
    supervisor.kill_group(int(state["pid"]), server.alive, timeout)
    server.clear_state()
    return True


def ensure_running(settings: CourseSettings | None = None) -> ServerStatus:
    """Start the active profile's server if needed (used by notebooks 01, 02 and 05)."""
    return start(default_config(settings))


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.services.llm_server start|stop|status|logs``."""
    parser = SpanishArgumentParser(
        prog="scripts/llm_server",
        description="Arranca, comprueba y para el servidor llama.cpp local del curso (compatible con OpenAI).",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "logs"], help="qué hacer")
    parser.add_argument("--port", default=None, help=f"puerto (por defecto: ${PORT_ENV} o {DEFAULT_PORT})")
    parser.add_argument("--timeout", default="120", help="segundos de espera al arrancar (por defecto: 120)")
    args = parser.parse_args(argv)
    try:
        port = port_from_env() if args.port is None else parse_port(args.port)
        if args.command == "stop":
            print("parado" if stop(port) else "no estaba en marcha")
            return 0
        if args.command == "logs":
            print(service(port).log_tail(lines=60))
            return 0
        config = default_config(port=port)
        if args.command == "start":
            print(start(config, timeout=parser.positive_seconds(args.timeout, "--timeout")).describe())
            return 0
        current = status(config)
        print(current.describe())
        return 0 if current.healthy else 3
    except (LLMServerError, KeyboardInterrupt) as exc:
        return parser.fail(exc)


if __name__ == "__main__":
    sys.exit(main())
