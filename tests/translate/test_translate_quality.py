"""Quality checks, the exercise's self-check and small helpers of utils.translate."""

from __future__ import annotations

import pytest

from utils.translate.quality import FLAGS, check_rows, check_turn, checks_frame, plot_checks, summarize


def _row(en: str, es: str, index: int = 0) -> dict:
    return {
        "id": str(index),
        "row_index": index,
        "conversations": [{"from": "gpt", "value": es}],
        "conversations_en": [{"from": "gpt", "value": en}],
    }


GOOD_EN = "<image>\nThe bus in the image is yellow and there are 4 people waiting at the stop."
GOOD_ES = "<image>\nEl autobús de la imagen es amarillo y hay 4 personas esperando en la parada."


def test_a_good_translation_has_no_flags():
    flags, lang, score, ratio = check_turn(GOOD_EN, GOOD_ES)
    assert flags == [] and lang == "es" and score > 0.5 and 0.9 < ratio < 1.4


@pytest.mark.parametrize(
    ("es", "flag"),
    [
        ("<image>\nThe bus in the image is yellow and there are 4 people waiting at the stop.", "not_spanish"),
        ("<image>\nEl autobús.", "length_ratio"),
        ("El autobús de la imagen es amarillo y hay 4 personas esperando en la parada.", "image_tag"),
        ("El autobús de la imagen es amarillo\ny hay 4 personas esperando en la parada. <image>", "image_tag"),
        ("<image>\nEl autobús de la imagen es amarillo y hay cuatro personas esperando en la parada.", "numbers"),
        ("<image> El autobús de la imagen es amarillo y hay 4 personas esperando en la parada.", "structure"),
    ],
)
def test_each_flag_fires_on_its_defect(es, flag):
    flags, *_ = check_turn(GOOD_EN, es)
    assert flag in flags, flags


def test_untranslated_sentences_are_found():
    en = "The dog is sleeping on the sofa. It looks very comfortable."
    es = "El perro duerme en el sofá. It looks very comfortable."
    assert "untranslated" in check_turn(en, es)[0]


def test_summary_lists_flagged_rows_and_counts():
    rows = [_row(GOOD_EN, GOOD_ES, 0), _row(GOOD_EN, GOOD_EN, 1)]
    checks = check_rows(rows)
    summary = summarize(checks)
    assert summary["turns_checked"] == 2 and summary["turns_flagged"] == 1
    assert summary["flagged_rows"] == [{"row_index": 1, "id": "1", "flags": {"not_spanish": [0], "untranslated": [0]}}]
    frame = checks_frame(checks)
    assert list(frame["not_spanish"]) == [False, True] and set(FLAGS) <= set(frame.columns)
    fig = plot_checks(checks, title="t")
    assert len(fig.axes) == 2


def test_idle_cpu_threads_follows_the_load(monkeypatch):
    import os

    from utils.translate import backends

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert backends.idle_cpu_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (1.1, 1.0, 1.0))
    assert backends.idle_cpu_threads() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert backends.idle_cpu_threads() == 1


def test_input_file_of_the_mini_profile_is_in_data():
    from utils.core.settings import get_settings
    from utils.translate.records import input_file

    path = input_file(get_settings("mini").translate)
    assert path.is_file() and path.parent.name == "data"
