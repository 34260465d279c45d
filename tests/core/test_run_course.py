"""`make course`'s summary shows each notebook's headline figures."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from utils.core.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_course", ROOT / "scripts" / "run_course.py")
run_course = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_course)


def test_headlines_come_first_and_missing_ones_are_named():
    values = {"train_pairs_good": 160, "chrf_good": 41.234, "chrf_base": 19.1, "chrf_bad": 30.0}
    out = run_course.format_values(values, ("chrf_base", "chrf_good", "chrf_bad", "chrf_gap"))
    assert out == "chrf_base=19.1, chrf_good=41.2, chrf_bad=30 (sin medir: chrf_gap)"


def test_without_headlines_the_first_numbers_are_shown():
    assert run_course.format_values({"a": 1, "b": "x", "c": True, "d": 2.5}) == "a=1, d=2.5"


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name[:2])
def test_every_headline_is_recorded_by_its_notebook(info):
    source = (ROOT / info.repo_path).read_text(encoding="utf-8")
    headline = run_course.HEADLINES[info.name[:2]]
    assert headline
    for key in headline:
        # notebook 01 records its engine totals as f"seq2seq_{k}" for k in a list of names
        name = key.removeprefix("seq2seq_") if info.name.startswith("01") else key
        assert name in source, f"{info.name} never records {key!r}"
