"""Start, join and stop a local Ray cluster on 127.0.0.1, on the course's ports.

The translation engine (``python -m utils.translate run … --ray local|ADDRESS``) and
distilabel's ``pipeline.ray()`` run their work on a Ray cluster.  ``local`` means a head
started here, on this machine only::

    python -m utils.services.ray_cluster start     # prints the ADDRESS to join
    python -m utils.services.ray_cluster status
    python -m utils.services.ray_cluster stop

What this module guarantees, and why:

* **Only 127.0.0.1.**  Ray replaces ``127.0.0.1`` with the machine's network address unless
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is set for ``ray start`` *and* for the driver;
  :func:`start` and :func:`connect` set it.
* **The course's ports.**  ``COURSE_RAY_PORT`` (default 6390; never Ray's 6379, which is the
  course's Redis) is the head's port; the cluster uses that port and the next
  ``PORT_SPAN - 1`` (:func:`port_layout`): node manager, object manager, agents, metrics, then the workers.
* **Stopped by pid, never by name.**  ``ray stop`` kills every Ray process of the machine,
  other people's clusters included.  :func:`stop` stops the ``ray start --head --block``
  process recorded in ``build/run/ray-<port>.json`` and the processes it started (Ray's
  workers live in their own sessions, so they are found through their parent pids).
* **No secrets.**  The cluster's processes get :func:`utils.core.secrets.service_env`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from utils.core.errors import CourseError
from utils.core.secrets import service_env
from utils.services import supervisor
from utils.services.cli import SpanishArgumentParser

HOST = "127.0.0.1"
DEFAULT_PORT = 6390
PORT_ENV = "COURSE_RAY_PORT"
#: How many consecutive ports one cluster uses, from ``COURSE_RAY_PORT`` on: 8 for Ray's own
#: services, the rest for worker processes. A distilabel RayPipeline needs one worker per step
#: and per queue (~20 for notebook 02's 8 steps); with fewer free ports it waits forever.
PORT_SPAN = 60
#: Set for ``ray start`` and the driver so that Ray keeps 127.0.0.1 (measured with Ray 2.60). Token
#: authentication off on both sides: Ray 2.60 turns it on for a head once ``~/.ray/auth_token`` exists
#: while a driver stays off, and then cannot join («InvalidAuthToken»); the cluster listens on
#: 127.0.0.1 only.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
#: The raylet gives its agents 15 s to start by default: too little on a busy 2-core machine
#: (measured: the dashboard agent took 15-20 s to import with a load average of 13).
_SLOW_MACHINE_ENV = {"RAY_agent_register_timeout_ms": "120000", "RAY_raylet_start_wait_time_s": "120"}
#: ``ray start`` itself waits a fixed 30 s for the node to register, and the raylet 15 s for its
#: dashboard agent (neither is configurable in Ray 2.60); on a busy machine either may give up
#: while everything is fine but slow.  Then the start is tried again, this many times.
START_ATTEMPTS = 3
#: What the head's command line contains (tells our process from a reused pid).
_MARKERS = (b"ray.scripts.scripts",)
_READY_LINE = "Ray runtime started"


class RayClusterError(CourseError):
    """The Ray cluster could not be started, joined or stopped; the message says what to do."""


@dataclass(frozen=True)
class ClusterStatus:
    """The course's local cluster on one port."""

    running: bool
    pid: int | None
    address: str
    log_file: Path

    def describe(self) -> str:
        if self.running:
            return f"en marcha (pid {self.pid}) en {self.address}; únete con --ray {self.address}"
        return "parado"


# --------------------------------------------------------------------------- ports


def parse_port(raw: object, source: str = "--port") -> int:
    """``raw`` as the head's port (leaving room for the ports after it), or :class:`RayClusterError`."""
    try:
        port = supervisor.parse_port(raw, source, DEFAULT_PORT)
    except ValueError as exc:
        raise RayClusterError(str(exc)) from None
    if port + PORT_SPAN - 1 > 65535 or port < 1024:
        raise RayClusterError(
            f"{source}={port}: el clúster Ray usa ese puerto y los {PORT_SPAN - 1} siguientes; elige uno "
            f"entre 1024 y {65536 - PORT_SPAN}, por ejemplo {DEFAULT_PORT}."
        )
    return port


def port_from_env() -> int:
    """The head's port from ``COURSE_RAY_PORT`` (default 6390)."""
    return supervisor.env_port(PORT_ENV, DEFAULT_PORT, parse_port)


def port_layout(port: int) -> dict[str, int]:
    """Every port a cluster whose head listens on ``port`` uses (all in ``port … port + PORT_SPAN - 1``)."""
    return {
        "port": port,
        "node-manager-port": port + 1,
        "object-manager-port": port + 2,
        "dashboard-agent-listen-port": port + 3,
        "dashboard-agent-grpc-port": port + 4,
        "runtime-env-agent-port": port + 5,
        "metrics-export-port": port + 6,
        "dashboard-port": port + 7,
        "min-worker-port": port + 8,
        "max-worker-port": port + PORT_SPAN - 1,
    }


def parse_address(text: str) -> str:
    """``HOST:PORT`` of an existing cluster, or :class:`RayClusterError` saying what to type."""
    text = text.strip()
    host, sep, raw_port = text.rpartition(":")
    if text.startswith("ray://"):
        raise RayClusterError(
            f"--ray {text}: las direcciones ray:// son de Ray Client, que el curso no instala. Usa la dirección "
            "del nodo cabeza, HOST:PUERTO (la que imprime `ray start --head`), o `--ray local`."
        )
    try:
        port = supervisor.parse_port(raw_port, "--ray", DEFAULT_PORT) if sep else None
    except ValueError:
        port = None
    if not host or port is None:
        raise RayClusterError(
            f"--ray {text!r} no es una dirección de clúster Ray. Usa `--ray local` (arranca uno en esta máquina) "
            f"o `--ray HOST:PUERTO` de un clúster en marcha, por ejemplo `--ray {HOST}:{DEFAULT_PORT}`."
        )
    return f"{host}:{port}"


def _is_loopback(host: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return host == "localhost"


# --------------------------------------------------------------------------- state


def service(port: int) -> supervisor.Service:
    """The head on ``port``: its files in ``build/run/ray-<port>.*``."""
    return supervisor.Service("ray", port, _MARKERS)


def temp_dir(port: int) -> Path:
    """Ray's session folder for the cluster on ``port`` (short: Ray's socket paths must fit 107 bytes)."""
    return Path(tempfile.gettempdir()) / f"ray-course-{port}"


def status(port: int | None = None) -> ClusterStatus:
    """Whether the course's head runs on ``port`` and holds it."""
    port = port_from_env() if port is None else parse_port(port)
    head = service(port)
    state = head.read_state()
    pid = int(state["pid"]) if state and "pid" in state else None
    return ClusterStatus(
        running=pid is not None and supervisor.owns_port(pid, port),
        pid=pid,
        address=f"{HOST}:{port}",
        log_file=head.log_file,
    )


# --------------------------------------------------------------------------- start / stop


def _ray_command(port: int, num_cpus: int | None, num_gpus: int | None, object_store_mb: int) -> list[str]:
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
        "--node-ip-address", HOST,
        "--include-dashboard", "false", "--include-log-monitor", "false", "--disable-usage-stats",
        "--temp-dir", str(temp_dir(port)),
        "--object-store-memory", str(object_store_mb * 1024 * 1024),
    ]  # fmt: skip
    for option, value in port_layout(port).items():
        cmd += [f"--{option}", str(value)]
    if num_cpus is not None:
        cmd += ["--num-cpus", str(num_cpus)]
    if num_gpus is not None:
        cmd += ["--num-gpus", str(num_gpus)]
    return cmd


def _cluster_env() -> dict[str, str]:
    """The head's environment: no secrets, loopback only, and this ``utils`` importable by workers."""
    env = service_env()
    src = str(Path(__file__).resolve().parents[2])  # the folder that holds the `utils` package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    return {**env, **LOOPBACK_ENV, **_SLOW_MACHINE_ENV}


def start(
    port: int | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    object_store_mb: int = 256,
    timeout: float = 180.0,
) -> ClusterStatus:
    """Start a Ray head on 127.0.0.1:``port`` unless the course's head already runs there.

    Idempotent and serialized by a per-port lock, like :func:`utils.services.llm_server.start`.

    Raises:
        RayClusterError: a port of the range is taken by another program, Ray is not
            installed, or the head fails to start (the message quotes its log).
    """
    port = port_from_env() if port is None else parse_port(port)
    with service(port).lock():
        current = status(port)
        if current.running:
            return current
        if current.pid is not None:  # started by another call, still coming up
            offset = int((service(port).read_state() or {}).get("log_offset", 0))
            return _wait_ready(port, current.pid, offset, timeout)
        busy = [p for p in port_layout(port).values() if supervisor.port_busy(HOST, p)]
        if busy:
            raise RayClusterError(
                f"El puerto {busy[0]} (del rango {port}–{port + PORT_SPAN - 1} del clúster Ray) ya lo usa otro "
                f"programa. Elige otro rango: `export {PORT_ENV}={port + PORT_SPAN}`."
            )
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise RayClusterError(
                f"Ray no está instalado ({exc}). Ejecuta `make setup` (o `pip install ray`)."
            ) from None
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return _spawn_head(port, num_cpus, num_gpus, object_store_mb, timeout)
            except RayClusterError as exc:
                if attempt == START_ATTEMPTS or "timed out during startup" not in str(exc):
                    raise
        raise AssertionError("unreachable")


def _spawn_head(port: int, num_cpus: int | None, num_gpus: int | None, object_store_mb: int, timeout: float):
    head = service(port)
    log = head.log_file
    offset = log.stat().st_size if log.exists() else 0
    proc = head.spawn(_ray_command(port, num_cpus, num_gpus, object_store_mb), _cluster_env())
    head.write_state(
        {"pid": proc.pid, "address": f"{HOST}:{port}", "started": time.time(), "log": str(log), "log_offset": offset}
    )
    try:
        return _wait_ready(port, proc.pid, offset, timeout, proc)
    except BaseException:
        stop(port)  # never leave a half-started cluster behind
        raise


def _wait_ready(port: int, pid: int, offset: int, timeout: float, proc=None) -> ClusterStatus:
    head = service(port)
    log = head.log_file

    def ready() -> bool:
        try:
            with open(log, "rb") as handle:
                handle.seek(offset)
                started = _READY_LINE.encode() in handle.read()
        except OSError:
            return False
        return started and supervisor.owns_port(pid, port)

    def dead() -> str | None:
        alive = proc.poll() is None if proc is not None else head.alive(pid)
        return None if alive else "exited"

    try:
        if supervisor.wait_until(ready, dead, timeout, interval=0.5):
            return status(port)
    except supervisor.ProcessDied:
        raise RayClusterError(
            f"El clúster Ray se cerró durante el arranque. Últimas líneas del log ({log}):\n"
            f"{head.log_tail()}\nCorrige lo que indica y vuelve a intentarlo "
            "(`python -m utils.services.ray_cluster start`)."
        ) from None
    raise RayClusterError(
        f"El clúster Ray no estuvo listo en {timeout:.0f} s en {HOST}:{port}. Mira su log ({log}); en una "
        "máquina cargada, vuelve a intentarlo con más tiempo (`python -m utils.services.ray_cluster start "
        "--timeout 600`)."
    )


def stop(port: int | None = None, timeout: float = 30.0) -> bool:
    """Stop the course's cluster on ``port``: its head and every process it started, by pid.

    The head is asked first (SIGTERM: Ray drains the node and ends its processes); what is
    left after ``timeout`` s is killed.  Returns False if no course cluster ran there.
    """
    port = port_from_env() if port is None else parse_port(port)
    head = service(port)
    state = head.read_state()
    if state is None or "pid" not in state:
        return False
    pid = int(state["pid"])
    # Ray's workers change session, not parent: found as descendants, not as the head's group
    family = set(supervisor.descendants(pid)) | set(supervisor.group_members(pid))
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while head.alive(pid) and time.monotonic() < deadline:
        supervisor.reap(pid)
        time.sleep(0.2)
    family |= set(supervisor.descendants(pid))
    for member in sorted(family | {pid}):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(member, signal.SIGKILL)
    supervisor.reap(pid)
    head.clear_state()
    return True


# --------------------------------------------------------------------------- drivers


def use_loopback() -> None:
    """Make this process's Ray keep 127.0.0.1 (call before ``ray.init``; safe if Ray is imported).

    Ray reads ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` once, when it is imported; if it already was
    (distilabel imports it), the constant it was read into is set as well.
    """
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def connect(address: str, **init_kwargs) -> None:
    """``ray.init`` on the cluster at ``address`` (``HOST:PORT``) from this process (the driver).

    For a loopback address the driver gets ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` too, or Ray
    would look for the node on the machine's network address and not find it.
    """
    address = parse_address(address)
    if _is_loopback(address.rpartition(":")[0]):
        use_loopback()
        init_kwargs.setdefault("_node_ip_address", HOST)
    import ray

    init_kwargs.setdefault("log_to_driver", False)
    init_kwargs.setdefault("configure_logging", False)
    if ray.is_initialized():
        ray.shutdown()
    try:
        ray.init(address=address, **init_kwargs)
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        raise RayClusterError(
            f"No se pudo unir al clúster Ray en {address} ({exc}). Comprueba que está en marcha "
            "(`python -m utils.services.ray_cluster status`) o usa `--ray local`."
        ) from None


@contextlib.contextmanager
def cluster(spec: str, **start_kwargs) -> Iterator[str]:
    """The address of the cluster ``spec`` names, for the duration of a ``with`` block.

    ``"local"`` starts a head on 127.0.0.1 (``COURSE_RAY_PORT``) and stops it on exit — unless
    it was already running, in which case it is reused and left running.  A head left behind
    by an earlier ``cluster("local")`` whose process was killed (``kill -9`` gives no chance to
    stop it) is adopted: reused, then stopped on exit.  Anything else is the ``HOST:PORT`` of
    an existing cluster, joined and never stopped.
    """
    if spec.strip() != "local":
        yield parse_address(spec)
        return
    port = start_kwargs.pop("port", None)
    port = port_from_env() if port is None else parse_port(port)
    head = service(port)
    with supervisor.start_lock(head.lock_file.with_suffix(".owner")):
        state = head.read_state() if status(port).running else None
        orphaned = state is not None and "owner" in state and not supervisor.is_alive(int(state["owner"]))
        current = start(port, **start_kwargs)
        owned = state is None or orphaned
        if owned:  # mark it as this process's, so that a killed run's head is found and adopted
            head.write_state({**(head.read_state() or {}), "owner": os.getpid()})
    try:
        yield current.address
    finally:
        if owned:
            stop(port)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.services.ray_cluster start|stop|status|logs``."""
    parser = SpanishArgumentParser(
        prog="python -m utils.services.ray_cluster",
        description="Arranca, comprueba y para el clúster Ray local del curso (solo 127.0.0.1).",
    )
    parser.add_argument("command", choices=["start", "stop", "status", "logs"], help="qué hacer")
    parser.add_argument(
        "--port", default=None, help=f"puerto del nodo cabeza (por defecto: ${PORT_ENV} o {DEFAULT_PORT})"
    )
    parser.add_argument("--num-cpus", type=int, default=None, help="CPU que ofrece el nodo (por defecto: todas)")
    parser.add_argument("--num-gpus", type=int, default=None, help="GPU que ofrece el nodo (por defecto: las que vea)")
    parser.add_argument("--timeout", default="180", help="segundos de espera al arrancar (por defecto: 180)")
    args = parser.parse_args(argv)
    try:
        port = port_from_env() if args.port is None else parse_port(args.port)
        if args.command == "stop":
            print("parado" if stop(port) else "no estaba en marcha")
            return 0
        if args.command == "logs":
            print(service(port).log_tail(lines=60))
            return 0
        if args.command == "start":
            timeout = parser.positive_seconds(args.timeout, "--timeout")
            print(start(port, num_cpus=args.num_cpus, num_gpus=args.num_gpus, timeout=timeout).describe())
            return 0
        current = status(port)
        print(current.describe())
        return 0 if current.running else 3
    except (RayClusterError, KeyboardInterrupt) as exc:
        return parser.fail(exc)


if __name__ == "__main__":
    sys.exit(main())
