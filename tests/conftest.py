"""Shared fixtures of the test suite."""

from __future__ import annotations

import socket
import sys
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
