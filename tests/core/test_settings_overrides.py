"""Knobs in the cell (``start(..., max_steps=60)``) and COURSE_SETTINGS_OVERRIDES."""

from __future__ import annotations

import json

import pytest

from utils.core.notebook import start
from utils.core.settings import OVERRIDES_ENV, ProfileError, get_settings


@pytest.fixture(autouse=True)
def _mini(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path))
    monkeypatch.delenv(OVERRIDES_ENV, raising=False)


def test_knob_in_the_cell_changes_only_that_setting():
    nb = start("03_datos_buenos_vs_malos", verbose=False, max_steps=7, learning_rate=1)
    assert nb.cfg.max_steps == 7
    assert nb.cfg.learning_rate == 1.0 and isinstance(nb.cfg.learning_rate, float)
    assert nb.cfg.batch_size == get_settings("mini").good_bad.batch_size
    assert nb.overrides == {"good_bad.max_steps": 7, "good_bad.learning_rate": 1}
    assert nb.results.values["settings_overrides"] == nb.overrides


def test_unknown_knob_lists_the_valid_names_in_spanish():
    with pytest.raises(ProfileError, match="no es un ajuste de la sección good_bad.*max_steps"):
        start("03_datos_buenos_vs_malos", verbose=False, max_step=7)


@pytest.mark.parametrize("value", ["7", 7.5, True, None])
def test_wrong_type_is_refused(value):
    with pytest.raises(ProfileError, match="espera un valor de tipo int"):
        start("03_datos_buenos_vs_malos", verbose=False, max_steps=value)


def test_environment_overrides_reach_every_get_settings_call(monkeypatch):
    monkeypatch.setenv(OVERRIDES_ENV, json.dumps({"llava.max_steps": 3, "good_bad.eval_pairs": 5}))
    assert get_settings().llava.max_steps == 3
    assert get_settings("full").good_bad.eval_pairs == 5
    nb = start("04_llava_vqa_lora", verbose=False, batch_size=2)
    assert (nb.cfg.max_steps, nb.cfg.batch_size) == (3, 2)
    assert nb.overrides == {"llava.max_steps": 3, "llava.batch_size": 2, "good_bad.eval_pairs": 5}


@pytest.mark.parametrize(
    "raw, message",
    [
        ("{nope", "no es JSON válido"),
        ("[1]", "objeto JSON"),
        ('{"max_steps": 1}', "sección.ajuste"),
        ('{"nada.max_steps": 1}', "no es una sección"),
    ],
)
def test_bad_environment_overrides_are_explained(monkeypatch, raw, message):
    monkeypatch.setenv(OVERRIDES_ENV, raw)
    with pytest.raises(ProfileError, match=message):
        get_settings()


def test_describe_marks_what_changed(capsys):
    start("03_datos_buenos_vs_malos", max_steps=7)
    out = capsys.readouterr().out
    assert "max_steps" in out and "← cambiado" in out
