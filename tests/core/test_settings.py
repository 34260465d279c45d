"""Profiles: the default choice, the override, and that both profiles are complete."""

from __future__ import annotations

import dataclasses
import os
import sys
import types

import pytest

from utils.core import settings
from utils.core.course import NOTEBOOKS
from utils.core.settings import CourseSettings, ProfileError, active_profile, get_settings


def test_mini_is_the_default_outside_colab(monkeypatch, no_colab):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert active_profile()[0] == "mini"
    assert get_settings().profile == "mini"


def test_full_is_the_default_in_colab(monkeypatch, no_colab):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    name, reason = active_profile()
    assert name == "full" and "Colab" in reason


@pytest.mark.parametrize("value", ["mini", "full", " FULL "])
def test_env_overrides_the_default(monkeypatch, no_colab, value):
    monkeypatch.setenv("COURSE_PROFILE", value)
    assert active_profile()[0] == value.strip().lower()


def test_unknown_profile_is_an_actionable_error(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "big")
    with pytest.raises(ProfileError, match=r"COURSE_PROFILE='big'.*mini, full"):
        active_profile()
    with pytest.raises(ProfileError, match="El perfil 'medium' no existe"):
        get_settings("medium")


def test_every_notebook_has_a_section_in_both_profiles():
    names = {f.name for f in dataclasses.fields(CourseSettings)}
    for info in NOTEBOOKS:
        assert info.section in names, info.name
        for profile in settings.PROFILES:
            assert dataclasses.is_dataclass(getattr(get_settings(profile), info.section))


def test_profiles_differ_only_in_values():
    mini, full = get_settings("mini"), get_settings("full")
    for field in dataclasses.fields(CourseSettings):
        a, b = getattr(mini, field.name), getattr(full, field.name)
        assert type(a) is type(b), field.name


def test_mini_uses_only_offline_models():
    mini = get_settings("mini")
    model_fields = ["gguf", "mt_model_id", "generator_model", "judge_model", "base_model", "model_id"]
    for section in (mini.llm, mini.translate, mini.sft_dpo, mini.good_bad, mini.llava):
        for field in model_fields:
            value = getattr(section, field, None)
            if value is not None:
                assert value.startswith("local:"), f"{type(section).__name__}.{field}={value!r}"
    assert not mini.needs_gpu


def test_full_uses_hub_models_and_a_gpu():
    full = get_settings("full")
    assert full.needs_gpu and full.min_vram_gb >= 12
    assert "/" in full.good_bad.base_model and not full.good_bad.base_model.startswith("local:")


def test_settings_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_settings("mini").good_bad.max_steps = 1  # type: ignore[misc]


def test_start_prints_profile_and_goes_offline_in_mini(monkeypatch, no_colab, isolated_build, capsys):
    from utils.core.notebook import OFFLINE_ENV, start

    monkeypatch.setenv("COURSE_PROFILE", "mini")
    for key in OFFLINE_ENV:
        monkeypatch.delenv(key, raising=False)
    ctx = start("03_datos_buenos_vs_malos")
    out = capsys.readouterr().out
    assert "Perfil activo: mini" in out
    assert "base_model" in out and ctx.cfg.base_model in out
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert ctx.cfg is ctx.settings.good_bad


def test_start_in_full_does_not_force_offline(monkeypatch, no_colab, isolated_build, capsys):
    from utils.core.notebook import start

    monkeypatch.setenv("COURSE_PROFILE", "full")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    ctx = start("05", verbose=False)
    assert ctx.profile == "full" and "HF_HUB_OFFLINE" not in os.environ
