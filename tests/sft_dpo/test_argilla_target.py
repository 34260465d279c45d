"""Where notebook 02 finds Argilla: env / Colab secrets, else the local server in mini."""

from __future__ import annotations

import pytest

from utils.core.secrets import MissingSecretError
from utils.core.settings import get_settings
from utils.services.argilla_server import LOCAL_API_KEY
from utils.sft_dpo.argilla_io import ArgillaConfigError, agent_name, connect, record_id, resolve_target


@pytest.fixture
def no_argilla_env(monkeypatch, no_colab):
    for name in ("ARGILLA_API_URL", "ARGILLA_API_KEY", "COURSE_ARGILLA_PORT"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_mini_defaults_to_the_local_server(no_argilla_env):
    target = resolve_target(get_settings("mini"))
    assert target.is_local and target.api_url == "http://127.0.0.1:6900" and target.api_key == LOCAL_API_KEY
    no_argilla_env.setenv("COURSE_ARGILLA_PORT", "6950")
    assert resolve_target(get_settings("mini")).api_url == "http://127.0.0.1:6950"


def test_env_wins_and_the_key_is_never_shown(no_argilla_env):
    no_argilla_env.setenv("ARGILLA_API_URL", "https://yo-argilla.hf.space/")
    no_argilla_env.setenv("ARGILLA_API_KEY", "k" * 24)
    target = resolve_target(get_settings("full"))
    assert target.api_url == "https://yo-argilla.hf.space" and not target.is_local
    assert "k" * 24 not in repr(target)


def test_missing_key_is_actionable(no_argilla_env):
    no_argilla_env.setenv("ARGILLA_API_URL", "https://yo-argilla.hf.space")
    with pytest.raises(
        MissingSecretError, match=r"Falta ARGILLA_API_KEY: guárdalo en los secretos de Colab.*README §Argilla"
    ):
        resolve_target(get_settings("mini"))
    no_argilla_env.delenv("ARGILLA_API_URL")
    with pytest.raises(MissingSecretError, match=r"Falta ARGILLA_API_URL.*README §Argilla"):
        resolve_target(get_settings("full"))


def test_record_ids_are_deterministic_and_agent_names_valid():
    assert record_id("sft", "es-mini-001") == record_id("sft", "es-mini-001") == "sft-es-mini-001"
    assert record_id("dpo", "12 34/ñ") == "dpo-12_34_"
    assert agent_name("Qwen/Qwen2.5-3B-Instruct") == "Qwen/Qwen2.5-3B-Instruct"
    assert agent_name("juez léxico") == "juez l-xico"


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def not_argilla():
    """An HTTP server on 127.0.0.1 that answers 404 to everything (not Argilla's API)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"detail": "Not Found"}')

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _connect_error(env, url: str) -> str:
    env.setenv("ARGILLA_API_URL", url)
    env.setenv("ARGILLA_API_KEY", "una-clave-cualquiera-123")
    with pytest.raises(ArgillaConfigError) as info:
        connect(get_settings("full"))
    message = str(info.value)
    assert "una-clave-cualquiera" not in message
    assert "ARGILLA_API_URL" in message and "hf.space" in message and "secretos de Colab" in message
    assert "README §Argilla" in message and info.value.__suppress_context__
    return message


def test_unreachable_url_says_to_check_the_space(no_argilla_env):
    message = _connect_error(no_argilla_env, f"http://127.0.0.1:{_closed_port()}")
    assert "no se puede conectar" in message and "Running" in message


def test_url_without_scheme_is_named(no_argilla_env):
    assert "no empieza por https://" in _connect_error(no_argilla_env, "yo-argilla.hf.space")


def test_a_server_that_is_not_argilla_is_named(no_argilla_env, not_argilla):
    assert "no es la API de Argilla" in _connect_error(no_argilla_env, not_argilla)


def test_credentials_inside_the_url_are_masked(no_argilla_env):
    message = _connect_error(no_argilla_env, f"http://yo:secreto-en-url@127.0.0.1:{_closed_port()}")
    assert "secreto-en-url" not in message and "***@127.0.0.1" in message
