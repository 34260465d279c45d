"""Start, check and stop a local llama.cpp OpenAI-compatible server.

The server is ``llama-cpp-python[server]`` (the engine inside LM Studio and Ollama) on
127.0.0.1, serving the profile's GGUF (SmolLM2-135M-Instruct in mini).  It runs in its own
process group, detached from the notebook, with a pid file and a log file in
``build/run/``; :func:`start` is idempotent and :func:`stop` is clean.

From a shell::

    scripts/llm_server start     # or: python -m utils.llm_server start
    scripts/llm_server status
    scripts/llm_server stop

``COURSE_LLM_PORT`` changes the port (default 8080).  To use another OpenAI-compatible
endpoint instead (LM Studio, Ollama, vLLM, OpenAI) set ``LLM_BASE_URL``; see
:mod:`utils.llm_client`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from utils.errors import CourseError
from utils.assets import resolve_gguf
from utils.paths import run_dir
from utils.settings import CourseSettings, get_settings

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
PORT_ENV = "COURSE_LLM_PORT"
#: The key the local server accepts; llama.cpp does not check it, the client needs one.
LOCAL_API_KEY = "sk-local-llama-cpp"


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
    healthy: bool  # it answers /v1/models with the expected model
    pid: int | None
    base_url: str
    model_alias: str
    log_file: Path

    def describe(self) -> str:
        if self.healthy:
            return f"running (pid {self.pid}) at {self.base_url}, model {self.model_alias!r}"
        if self.running:
            return f"starting or unhealthy (pid {self.pid}); log: {self.log_file}"
        return "stopped"


def port_from_env() -> int:
    """The port from ``COURSE_LLM_PORT`` (default 8080).

    Raises:
        LLMServerError: when the variable is not a valid port number.
    """
    raw = os.environ.get(PORT_ENV, "")
    if not raw:
        return DEFAULT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise LLMServerError(f"{PORT_ENV}={raw!r} is not a port number; use e.g. {PORT_ENV}=8080.")
    return int(raw)


def default_config(settings: CourseSettings | None = None, port: int | None = None) -> ServerConfig:
    """The server of the active profile (GGUF resolved, port from the environment)."""
    llm = (settings or get_settings()).llm
    return ServerConfig(
        model_path=resolve_gguf(llm.gguf),
        model_alias=llm.model_alias,
        port=port or port_from_env(),
        n_ctx=llm.n_ctx,
    )


def _state_file(port: int) -> Path:
    return run_dir() / f"llm_server-{port}.json"


def _log_file(port: int) -> Path:
    return run_dir() / f"llm_server-{port}.log"


def _is_our_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"llama_cpp.server" in cmdline


def _read_state(port: int) -> dict | None:
    path = _state_file(port)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _is_our_process(int(state.get("pid", -1))):
        path.unlink(missing_ok=True)  # stale pid file: the process is gone
        return None
    return state


def _served_models(base_url: str, timeout: float = 2.0) -> list[str] | None:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=timeout) as response:  # noqa: S310
            payload = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return [m.get("id", "") for m in payload.get("data", [])]


def _port_busy(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def status(config: ServerConfig | None = None) -> ServerStatus:
    """Report whether the course's server runs on the configured port and answers."""
    config = config or default_config()
    state = _read_state(config.port)
    models = _served_models(config.base_url) if state else None
    return ServerStatus(
        running=state is not None,
        healthy=bool(models) and config.model_alias in (models or []),
        pid=int(state["pid"]) if state else None,
        base_url=config.base_url,
        model_alias=config.model_alias,
        log_file=_log_file(config.port),
    )


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_healthy(config: ServerConfig, is_alive: Callable[[], bool], timeout: float) -> ServerStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = status(config)
        if current.healthy:
            return current
        if not is_alive():
            _state_file(config.port).unlink(missing_ok=True)
            raise LLMServerError(
                f"The llama.cpp server exited during start-up. Last log lines "
                f"({_log_file(config.port)}):\n{_log_tail(_log_file(config.port))}"
            )
        time.sleep(0.25)
    raise LLMServerError(
        f"The llama.cpp server did not answer within {timeout:.0f} s at {config.base_url}. "
        f"See its log: {_log_file(config.port)} (or `scripts/llm_server stop` and retry)."
    )


def start(config: ServerConfig | None = None, timeout: float = 120.0) -> ServerStatus:
    """Start the server unless it already runs; return once it answers.

    Idempotent: a healthy server started earlier (by a notebook, a test or
    ``scripts/llm_server``) is reused.

    Raises:
        LLMServerError: the port is taken by another program, llama-cpp-python is not
            installed, or the server fails to start (the message quotes its log).
    """
    config = config or default_config()
    current = status(config)
    if current.healthy:
        return current
    if current.running and current.pid is not None:  # started but still loading
        pid = current.pid
        return _wait_healthy(config, lambda: _is_our_process(pid), timeout)
    if _port_busy(config.host, config.port):
        raise LLMServerError(
            f"Port {config.port} is already used by another program (not the course's server). "
            f"Stop it, or choose another port: `export {PORT_ENV}=8081`."
        )
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise LLMServerError(
            f"llama-cpp-python[server] is not installed ({exc}). Run `make setup` "
            '(or `pip install "llama-cpp-python[server]"`).'
        ) from None
    if not config.model_path.is_file():
        raise LLMServerError(f"Model file not found: {config.model_path}.")

    log_path = _log_file(config.port)
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(config.model_path),
        "--model_alias", config.model_alias,
        "--host", config.host,
        "--port", str(config.port),
        "--n_ctx", str(config.n_ctx),
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(  # noqa: S603
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # survives the notebook kernel; stopped as a group
        )
    # Wait for the exec: until then /proc/<pid>/cmdline still shows this process.
    deadline = time.monotonic() + 10
    while proc.poll() is None and not _is_our_process(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    state = {**asdict(config), "pid": proc.pid, "started": time.time(), "log": str(log_path)}
    state["model_path"] = str(config.model_path)
    _state_file(config.port).write_text(json.dumps(state, indent=2), encoding="utf-8")
    try:
        return _wait_healthy(config, lambda: proc.poll() is None, timeout)
    except LLMServerError:
        stop(config.port)  # never leave a half-started server behind
        raise


def stop(port: int | None = None, timeout: float = 15.0) -> bool:
    """Stop the course's server on ``port`` (default: ``COURSE_LLM_PORT`` or 8080).

    Returns False if none was running there.
    """
    port = port or port_from_env()
    state = _read_state(port)
    if state is None:
        return False
    pid = int(state["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while _is_our_process(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _is_our_process(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _reap(pid)
    _state_file(port).unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if the server is our child (avoids a zombie in tests)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def ensure_running(settings: CourseSettings | None = None) -> ServerStatus:
    """Start the active profile's server if needed (used by notebooks 01, 02 and 05)."""
    return start(default_config(settings))


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.llm_server start|stop|status|logs``."""
    parser = argparse.ArgumentParser(
        prog="scripts/llm_server",
        description="Start, check and stop the course's local llama.cpp OpenAI-compatible server.",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "logs"])
    parser.add_argument("--port", type=int, default=None, help=f"default: ${PORT_ENV} or {DEFAULT_PORT}")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for start-up")
    args = parser.parse_args(argv)
    try:
        if args.command == "stop":
            stopped = stop(args.port)
            print("stopped" if stopped else "was not running")
            return 0
        if args.command == "logs":
            print(_log_tail(_log_file(args.port or port_from_env()), lines=60))
            return 0
        config = default_config(port=args.port)
        if args.command == "start":
            print(start(config, timeout=args.timeout).describe())
            return 0
        current = status(config)
        print(current.describe())
        return 0 if current.healthy else 3
    except LLMServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
