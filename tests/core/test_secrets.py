"""Secrets come from the environment or Colab userdata and are never revealed."""

from __future__ import annotations

import sys
import types

import pytest

from utils.core.secrets import MissingSecretError, describe_secret, get_secret

NAME = "COURSE_TEST_SECRET"


def fake_colab(monkeypatch, values: dict[str, str]):
    """Inject a stand-in for google.colab.userdata (only Colab has the real one)."""

    class SecretNotFoundError(Exception):
        pass

    userdata = types.ModuleType("google.colab.userdata")

    def get(key):
        if key not in values:
            raise SecretNotFoundError(key)
        return values[key]

    userdata.get = get  # type: ignore[attr-defined]
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata  # type: ignore[attr-defined]
    google = types.ModuleType("google")
    google.colab = colab  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)


def test_environment_first(monkeypatch):
    monkeypatch.setenv(NAME, "from-env")
    fake_colab(monkeypatch, {NAME: "from-colab"})
    assert get_secret(NAME) == "from-env"


def test_colab_userdata_second(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    fake_colab(monkeypatch, {NAME: "from-colab"})
    assert get_secret(NAME) == "from-colab"
    assert describe_secret(NAME).source == "colab"


def test_missing_secret_says_how_to_set_it(monkeypatch):
    monkeypatch.delenv(NAME, raising=False)
    fake_colab(monkeypatch, {})
    with pytest.raises(MissingSecretError) as info:
        get_secret(NAME, readme_section="Argilla")
    message = str(info.value)
    assert message.startswith(f"Falta {NAME}: guárdalo en los secretos de Colab")
    assert f"export {NAME}=" in message and "README §Argilla" in message
    assert info.value._render_traceback_() == [f"❌ {message}"]
    assert get_secret(NAME, required=False) is None


def test_describe_never_contains_the_value(monkeypatch):
    monkeypatch.setenv(NAME, "s3cr3t-value-123")
    found = describe_secret(NAME)
    assert found.length == len("s3cr3t-value-123") and found.source == "env"
    assert "s3cr3t" not in repr(found)
