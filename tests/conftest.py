"""Shared fixtures of the test suite."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture
def isolated_build(tmp_path, monkeypatch) -> Path:
    """Send build/ outputs (results, pid and log files) to a temporary folder."""
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "build"))
    return tmp_path / "build"


@pytest.fixture
def no_colab(monkeypatch):
    """Pretend we are not in Colab, whatever the environment says."""
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)


# --------------------------------------------------------------------------- where the time goes
#
# COURSE_TEST_TIMES=build/test-times.tsv makes the run write, per test (and per notebook cell
# under nbval), the wall seconds and the CPU seconds of pytest and every process below it
# (notebook kernels, servers the tests start, subprocesses), slowest CPU first.  On a shared
# machine the wall time follows the load; the CPU time does not, so it says what costs.

_TIMES_FILE = os.environ.get("COURSE_TEST_TIMES", "").strip()
_TIMES: list[tuple[str, float, float]] = []


def _cpu_seconds() -> float:
    """CPU of this process, its reaped children, and its live descendants (user + system)."""
    import resource

    import psutil

    total = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


if _TIMES_FILE:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item, nextitem):
        wall, cpu = time.monotonic(), _cpu_seconds()
        yield
        _TIMES.append((item.nodeid, time.monotonic() - wall, _cpu_seconds() - cpu))

    def pytest_sessionfinish(session, exitstatus):
        path = Path(_TIMES_FILE)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = sorted(_TIMES, key=lambda row: -row[2])
        lines = ["cpu_s\twall_s\ttest"] + [f"{cpu:.1f}\t{wall:.1f}\t{nodeid}" for nodeid, wall, cpu in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
