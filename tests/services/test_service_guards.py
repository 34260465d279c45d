"""Secrets stay where they belong: the local servers get no learner secrets, and credentials
inside URLs (``http://user:key@host``) never reach a message the course shows.

The real servers' environments are checked in test_llm_server and test_argilla (two
simultaneous starts); here the environment builders and every message path that shows an
endpoint URL, against a port where nothing listens (a real connection refusal).
"""

from __future__ import annotations

import pytest

from utils.core.errors import CourseError
from utils.core.preflight import PreflightError, check_service, preflight
from utils.core.retry import RetryPolicy
from utils.core.secrets import mask_credentials, service_env
from utils.services import argilla_server
from utils.services.llm_client import (
    Endpoint,
    LLMClient,
    LLMUnavailableError,
    get_completion,
    llm_service,
    resolve_endpoint,
)

KEY = "sk-topsecret-4242"
LEARNER_SECRETS = {
    "HF_TOKEN": "hf_value_1",
    "HUGGING_FACE_HUB_TOKEN": "hf_value_2",
    "OPENAI_API_KEY": "sk-value-3",
    "LLM_API_KEY": "sk-value-4",
    "ARGILLA_API_KEY": "argilla value 5",
    "GITHUB_TOKEN": "ghp_value_6",
    "AWS_SECRET_ACCESS_KEY": "aws-value-7",
    "DB_PASSWORD": "pw-value-8",
    "MY_APP_SECRET": "secret-value-9",
    "PROXY_URL": "http://ana:proxy-value-10@10.0.0.1:3128",
}


@pytest.mark.parametrize(
    "text, masked",
    [
        ("http://ana:sk-1@10.0.0.2:8000/v1", "http://***@10.0.0.2:8000/v1"),
        (
            "falló https://token@example.org/api y redis://:pw@127.0.0.1:6379/0",
            "falló https://***@example.org/api y redis://***@127.0.0.1:6379/0",
        ),
        ("http://a:b@c@host/x", "http://***@host/x"),
        ("http://127.0.0.1:8080/v1?to=ana@example.org", "http://127.0.0.1:8080/v1?to=ana@example.org"),
        ("escribe a ana@example.org", "escribe a ana@example.org"),
    ],
)
def test_mask_credentials(text, masked):
    assert mask_credentials(text) == masked


def test_service_env_drops_secrets_and_keeps_the_rest():
    environ = {**LEARNER_SECRETS, "PATH": "/usr/bin", "HOME": "/root", "LANG": "es_ES.UTF-8",
               "TOKENIZERS_PARALLELISM": "false", "ARGILLA_AUTH_SECRET_KEY": "server-own"}  # fmt: skip
    env = service_env(environ=environ, keep=("ARGILLA_AUTH_SECRET_KEY",))
    assert env == {"PATH": "/usr/bin", "HOME": "/root", "LANG": "es_ES.UTF-8",
                   "TOKENIZERS_PARALLELISM": "false", "ARGILLA_AUTH_SECRET_KEY": "server-own"}  # fmt: skip


def test_argilla_server_env_has_no_learner_secrets(monkeypatch, isolated_build):
    for name, value in LEARNER_SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ARGILLA_AUTH_SECRET_KEY", "the-servers-own-signing-key")  # a server setting: kept
    env = argilla_server._server_env(argilla_server.ArgillaServerConfig(port=6999, search_port=9299, redis_port=6399))
    assert not set(LEARNER_SECRETS) & set(env)
    assert not set(LEARNER_SECRETS.values()) & set(env.values())
    assert env["ARGILLA_AUTH_SECRET_KEY"] == "the-servers-own-signing-key"
    assert env["ARGILLA_ELASTICSEARCH"] == "http://127.0.0.1:9299" and "PATH" in env


@pytest.fixture
def url_with_key(monkeypatch, unused_port) -> str:
    url = f"http://ana:{KEY}@127.0.0.1:{unused_port}/v1"
    monkeypatch.setenv("LLM_BASE_URL", url)
    monkeypatch.setenv("LLM_MODEL", "some-model")
    return url


def test_llm_errors_and_reprs_mask_the_key(url_with_key, monkeypatch, capsys):
    endpoint = resolve_endpoint()
    assert endpoint.base_url == url_with_key  # the client still uses the real URL
    assert KEY not in repr(endpoint) and "***@127.0.0.1" in repr(endpoint)
    client = LLMClient(endpoint, retry=RetryPolicy(attempts=1))
    with pytest.raises(LLMUnavailableError) as info:
        get_completion("hola", client=client)
    assert KEY not in str(info.value) and KEY not in info.value.base_url and "***@127.0.0.1" in str(info.value)
    assert KEY not in info.value._render_traceback_()[0]

    monkeypatch.delenv("LLM_MODEL")  # without LLM_MODEL the models are listed: that error too
    with pytest.raises(LLMUnavailableError) as info:
        resolve_endpoint()
    assert KEY not in str(info.value)

    down = check_service(llm_service(endpoint)[0], timeout=1)
    assert not down.ok and KEY not in down.detail
    with pytest.raises(PreflightError) as info:
        preflight(services=llm_service(endpoint))
    assert KEY not in str(info.value) and KEY not in capsys.readouterr().out


def test_every_course_error_masks_urls():
    error = CourseError(f"no responde http://ana:{KEY}@10.0.0.2/v1")
    assert KEY not in str(error) and KEY not in error._render_traceback_()[0]
    assert KEY not in repr(Endpoint(f"https://u:{KEY}@api.example.org/v1", "m", KEY, is_course_server=False))
