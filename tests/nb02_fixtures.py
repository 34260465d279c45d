"""Fixtures of the notebook-02 tests (imported by those modules, not a conftest)."""

from __future__ import annotations

import pytest

from utils.services import llm_server
from utils.services.llm_client import resolve_endpoint


@pytest.fixture(scope="module")
def llm_endpoint():
    """The course's llama.cpp server (the one `make test` keeps up, or started here)."""
    started_here = not llm_server.status().healthy
    llm_server.ensure_running()
    yield resolve_endpoint()
    if started_here:
        llm_server.stop()
