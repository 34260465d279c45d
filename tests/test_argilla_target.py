"""Where notebook 02 finds Argilla: env / Colab secrets, else the local server in mini."""

from __future__ import annotations

import pytest

from utils.argilla_io import agent_name, record_id, resolve_target
from utils.argilla_server import LOCAL_API_KEY
from utils.secrets import MissingSecretError
from utils.settings import get_settings


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
    with pytest.raises(MissingSecretError, match=r"Falta ARGILLA_API_KEY: guárdalo en los secretos de Colab.*README §Argilla"):
        resolve_target(get_settings("mini"))
    no_argilla_env.delenv("ARGILLA_API_URL")
    with pytest.raises(MissingSecretError, match=r"Falta ARGILLA_API_URL.*README §Argilla"):
        resolve_target(get_settings("full"))


def test_record_ids_are_deterministic_and_agent_names_valid():
    assert record_id("sft", "es-mini-001") == record_id("sft", "es-mini-001") == "sft-es-mini-001"
    assert record_id("dpo", "12 34/ñ") == "dpo-12_34_"
    assert agent_name("Qwen/Qwen2.5-3B-Instruct") == "Qwen/Qwen2.5-3B-Instruct"
    assert agent_name("juez léxico") == "juez l-xico"
