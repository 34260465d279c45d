"""The course's local Ray cluster: 127.0.0.1 only, on the course's ports, no secrets, and
stopped by pid (a process merely *named* like Ray survives ``stop``, unlike with ``ray stop``).

One real head is started (``COURSE_RAY_PORT``, default 6390, and the 19 ports after it).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.services import ray_cluster, supervisor
from utils.services.ray_cluster import RayClusterError

pytest.importorskip("ray")

_LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


def _listening(pids: set[int]) -> list[tuple[str, int]]:
    """(local address in /proc hex, port) of every listening TCP socket held by ``pids``."""
    by_inode = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":
                address, port = fields[1].rsplit(":", 1)
                by_inode[fields[9]] = (address, int(port, 16))
    found = []
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in by_inode:
                found.append(by_inode[target[8:-1]])
    return found


def test_addresses_and_ports_are_checked_with_spanish_messages():
    assert ray_cluster.parse_address(" 10.0.0.5:6390 ") == "10.0.0.5:6390"
    for bad in ("local:", "10.0.0.5", "10.0.0.5:99999", "ray://10.0.0.5:10001", ":6390"):
        with pytest.raises(RayClusterError, match="--ray") as info:
            ray_cluster.parse_address(bad)
        assert "HOST:PUERTO" in str(info.value)
    with pytest.raises(RayClusterError, match=f"{ray_cluster.PORT_SPAN - 1} siguientes"):
        ray_cluster.parse_port(65530)
    layout = ray_cluster.port_layout(26480)
    assert min(layout.values()) == 26480 and max(layout.values()) == 26480 + ray_cluster.PORT_SPAN - 1
    assert len(set(layout.values())) == len(layout)
    assert ray_cluster.DEFAULT_PORT not in range(6379 - ray_cluster.PORT_SPAN + 1, 6380)  # never the course's Redis


def test_a_busy_port_in_the_range_is_refused_before_anything_starts(isolated_build):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        port = busy - 3 if busy - 3 >= 1024 else busy  # the blocker holds an agent's port of the range
        with pytest.raises(RayClusterError, match=f"El puerto {busy}.*export COURSE_RAY_PORT="):
            ray_cluster.start(port, timeout=5)
    assert not (isolated_build / "run" / f"ray-{port}.json").exists()


def test_local_cluster_is_loopback_only_secret_free_and_stopped_by_pid(monkeypatch):
    port = ray_cluster.port_from_env()
    monkeypatch.setenv("COURSE_TEST_API_KEY", "sk-must-not-leak")
    # A process whose name looks like Ray's: `ray stop` (pkill by name) would kill it; stop() must not.
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "raylet", "ray::IDLE"])
    try:
        with ray_cluster.cluster("local", port=port, num_cpus=1) as address:
            assert address == f"127.0.0.1:{port}"
            head = ray_cluster.status(port)
            assert head.running and head.pid
            family = {head.pid, *supervisor.descendants(head.pid)}
            sockets = _listening(family)
            assert any(p == port for _, p in sockets)
            assert all(addr in _LOOPBACK for addr, _ in sockets), sockets

            import ray

            ray_cluster.connect(address)
            try:

                @ray.remote
                def probe():
                    import ray as worker_ray

                    return worker_ray.util.get_node_ip_address(), os.environ.get("COURSE_TEST_API_KEY"), os.getpid()

                node_ip, leaked, worker_pid = ray.get(probe.remote(), timeout=120)
            finally:
                ray.shutdown()
            assert node_ip == "127.0.0.1"
            assert leaked is None
            family |= {worker_pid, *supervisor.descendants(head.pid)}
        # `cluster("local")` started it, so it stopped it: nothing of the family is left.
        time.sleep(0.5)
        left = [pid for pid in family if Path(f"/proc/{pid}").exists() and not _is_zombie(pid)]
        assert left == []
        assert not ray_cluster.status(port).running
        assert decoy.poll() is None, "stop() killed a process only because of its name"
        assert not any(supervisor.port_busy("127.0.0.1", p) for p in ray_cluster.port_layout(port).values())
    finally:
        decoy.send_signal(signal.SIGKILL)
        decoy.wait()
        ray_cluster.stop(port)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return True
