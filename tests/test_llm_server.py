"""The real llama.cpp server: start, idempotent start, chat through `openai`, stop.

These tests start their own server on a free port (not the one `make test` keeps up for
the notebooks) and stop it at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from utils import llm_server
from utils.llm_server import LLMServerError, ServerConfig, default_config, start, status, stop

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    old = os.environ.get("COURSE_BUILD_DIR")
    os.environ["COURSE_BUILD_DIR"] = str(build)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = default_config(port=port)
    yield cfg
    stop(cfg.port)
    if old is None:
        os.environ.pop("COURSE_BUILD_DIR", None)
    else:
        os.environ["COURSE_BUILD_DIR"] = old


def test_lifecycle_and_chat(config):
    from openai import OpenAI

    assert not status(config).running
    first = start(config)
    assert first.healthy and first.pid
    assert llm_server._state_file(config.port).is_file() and first.log_file.is_file()

    again = start(config)  # idempotent: same process, no second server
    assert again.pid == first.pid

    client = OpenAI(base_url=config.base_url, api_key=llm_server.LOCAL_API_KEY)
    assert config.model_alias in [m.id for m in client.models.list().data]
    reply = client.chat.completions.create(
        model=config.model_alias,
        messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        temperature=0,
        max_tokens=8,
    )
    assert "paris" in reply.choices[0].message.content.lower()
    assert reply.usage.completion_tokens > 0

    assert stop(config.port) is True
    assert not status(config).running
    assert not llm_server._state_file(config.port).exists()
    assert stop(config.port) is False  # already stopped: no error


def test_stale_pid_file_is_ignored(config):
    llm_server._state_file(config.port).write_text('{"pid": 999999}', encoding="utf-8")
    assert not status(config).running
    assert not llm_server._state_file(config.port).exists()


def test_port_taken_by_another_program(config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        other = ServerConfig(config.model_path, config.model_alias, port=busy.getsockname()[1])
        with pytest.raises(LLMServerError, match="already used by another program.*COURSE_LLM_PORT"):
            start(other)


def test_bad_port_env(monkeypatch):
    monkeypatch.setenv("COURSE_LLM_PORT", "eighty")
    with pytest.raises(LLMServerError, match="not a port number"):
        llm_server.port_from_env()


def test_cli_status_and_stop(config):
    env = {**os.environ, "COURSE_LLM_PORT": str(config.port)}
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "utils.llm_server", *args], env=env, capture_output=True, text=True, timeout=180
    )
    stopped = run("status")
    assert stopped.returncode == 3 and "stopped" in stopped.stdout
    started = run("start")
    assert started.returncode == 0 and "running" in started.stdout
    assert run("status").returncode == 0
    assert "stopped" in run("stop").stdout
    assert run("status").returncode == 3
