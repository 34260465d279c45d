"""The real llama.cpp server: start, idempotent start, chat through `openai`, stop.

These tests start their own server on a free port (not the one `make test` keeps up for
the notebooks) and stop it at the end.  Also: two simultaneous starts share one server (no
orphan), the server's environment carries no secrets, and bad ports get a Spanish message.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from llm_fixtures import config  # noqa: F401 - fixture: a free port and a temporary build/

from utils.services import llm_server, supervisor
from utils.services.llm_server import LLMServerError, ServerConfig, start, status, stop

#: Secrets a learner may have exported; the course's server must not inherit them.
SECRETS = {
    "HF_TOKEN": "hf_secret_value_1",
    "OPENAI_API_KEY": "sk-secret-value-2",
    "GITHUB_TOKEN": "ghp_secret_value_3",
    "MY_SERVICE_SECRET": "secret-value-4",
    "LLM_BASE_URL_BACKUP": "http://ana:secret-value-5@10.0.0.2/v1",
}

pytestmark = pytest.mark.server


def test_lifecycle_and_chat(config):
    from openai import OpenAI

    assert not status(config).running
    first = start(config)
    assert first.healthy and first.pid
    assert llm_server.service(config.port).state_file.is_file() and first.log_file.is_file()

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
    assert not llm_server.service(config.port).state_file.exists()
    assert stop(config.port) is False  # already stopped: no error


def test_stale_pid_file_is_ignored(config):
    llm_server.service(config.port).state_file.write_text('{"pid": 999999}', encoding="utf-8")
    assert not status(config).running
    assert not llm_server.service(config.port).state_file.exists()


def test_port_taken_by_another_program(config):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        other = ServerConfig(config.model_path, config.model_alias, port=busy.getsockname()[1])
        with pytest.raises(LLMServerError, match="ya lo usa otro programa.*COURSE_LLM_PORT"):
            start(other)


def test_bad_port_env(monkeypatch):
    monkeypatch.setenv("COURSE_LLM_PORT", "eighty")
    with pytest.raises(LLMServerError, match="no es un número de puerto"):
        llm_server.port_from_env()


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "utils.services.llm_server", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.mark.parametrize("bad", ["99999", "0", "-1", "ocho", "80.5", "65536"])
def test_bad_port_is_a_clean_spanish_message(bad, tmp_path):
    """`--port 99999` used to end in an OverflowError traceback; 0 silently meant the default."""
    for result in (
        _cli("status", "--port", bad, COURSE_BUILD_DIR=str(tmp_path)),
        _cli("start", f"--port={bad}", COURSE_BUILD_DIR=str(tmp_path)),
        _cli("stop", COURSE_LLM_PORT=bad, COURSE_BUILD_DIR=str(tmp_path)),
    ):
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr and "no es un número de puerto válido" in result.stderr
        assert result.stderr.startswith("error: ") and "entre 1 y 65535" in result.stderr
    with pytest.raises(LLMServerError, match="entre 1 y 65535"):
        llm_server.stop(int(bad) if bad.lstrip("-").isdigit() else bad)  # the Python API too


def test_two_simultaneous_starts_share_one_server(config):
    """Two `scripts/llm_server start` at once: one server, the pid file names it, `stop` stops it.

    Before the start lock, both spawned a server; the loser (which failed to bind) owned
    the pid file, so the winner was orphaned: `stop` said "was not running".
    """
    assert not status(config).running
    env = {**os.environ, **SECRETS, "COURSE_LLM_PORT": str(config.port)}
    command = [sys.executable, "-m", "utils.services.llm_server", "start"]
    starts = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]  # fmt: skip
    outputs = [proc.communicate(timeout=240) for proc in starts]
    assert [proc.returncode for proc in starts] == [0, 0], outputs
    current = status(config)
    assert current.healthy and all(f"pid {current.pid})" in out for out, _ in outputs), outputs
    assert supervisor.port_owners(config.port) == [current.pid]  # one server, and it is the recorded one
    assert supervisor.owns_port(current.pid, config.port)

    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{current.pid}/environ").read_text().split("\0") if "=" in item
    )
    assert not set(SECRETS) & set(environ), "the server inherited the learner's secrets"
    assert not any(value in environ.values() for value in SECRETS.values())
    assert environ.get("PATH") == os.environ.get("PATH")  # what it needs is still there

    stopped = _cli("stop", COURSE_LLM_PORT=str(config.port))
    assert stopped.returncode == 0 and stopped.stdout.strip() == "parado"
    assert supervisor.port_owners(config.port) == [] and not supervisor.port_busy("127.0.0.1", config.port)


def _recorded_pid(server) -> int | None:
    """The pid in the start's state file, read without side effects (None until it is written)."""
    import json

    try:
        return int(json.loads(server.state_file.read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError):
        return None


def test_ctrl_c_during_start_leaves_no_server_and_a_spanish_message(config):
    """Ctrl-C while the server loads: exit 130, a Spanish message, no server left.

    "While it loads" is made certain, not left to timing: as soon as the start has spawned the
    server (its pid file appears), the test freezes the server (SIGSTOP), checks it is not
    answering yet, interrupts the start, then lets the server go on (SIGCONT) so the start's
    own cleanup can stop it.
    """
    import signal
    import time

    env = {**os.environ, "COURSE_LLM_PORT": str(config.port)}
    server = llm_server.service(config.port)
    for _attempt in range(3):
        # Ctrl-C in a terminal reaches a process whose SIGINT has its default action.  Under `make test` the
        # tests run as a background job, which the shell starts with SIGINT ignored (inherited across exec),
        # and Python then never turns SIGINT into KeyboardInterrupt.  A handler is not inherited (exec resets
        # it to the default): with one here while spawning, the command starts as it would in a terminal.
        ignored = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "utils.services.llm_server", "start"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        finally:
            signal.signal(signal.SIGINT, ignored)
        deadline = time.monotonic() + 120
        while (pid := _recorded_pid(server)) is None:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.01)
        os.kill(pid, signal.SIGSTOP)  # frozen mid-load: the start cannot see it healthy now
        if status(config).healthy:  # it had already finished loading: not the case tested here
            os.kill(pid, signal.SIGCONT)
            proc.communicate(timeout=120)
            assert stop(config.port)
            continue
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        os.kill(pid, signal.SIGCONT)  # the start's cleanup stops it (SIGTERM waits for a stopped process)
        out, err = proc.communicate(timeout=120)
        break
    else:
        pytest.fail("el servidor terminó de cargar antes de poder interrumpir el arranque, tres veces")
    assert proc.returncode == 130, (out, err)
    assert err.startswith("error: interrumpido (Ctrl-C)") and "Traceback" not in err
    assert not status(config).running and supervisor.port_owners(config.port) == []


def test_stop_also_stops_a_server_left_without_pid_file(config):
    """A course server holding the port with no pid file (a crash) is adopted, not blamed on "another program"."""
    started = start(config)
    llm_server.service(config.port).state_file.unlink()
    again = status(config)
    assert again.healthy and again.pid == started.pid
    assert stop(config.port) is True
    assert not supervisor.port_busy("127.0.0.1", config.port)


def test_cli_status_and_stop(config):
    env = {**os.environ, "COURSE_LLM_PORT": str(config.port)}
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "utils.services.llm_server", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    stopped = run("status")
    assert stopped.returncode == 3 and "parado" in stopped.stdout
    started = run("start")
    assert started.returncode == 0 and "en marcha" in started.stdout
    assert run("status").returncode == 0
    assert "parado" in run("stop").stdout
    assert run("status").returncode == 3
