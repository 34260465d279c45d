"""Measured figures are written atomically and read back by `make course`."""

from __future__ import annotations

import json
import math

import numpy as np

from utils.core.results import Results, load_results


def test_record_writes_immediately(isolated_build):
    results = Results("03_datos_buenos_vs_malos", profile="mini")
    results.record(chrf_good=41.5, steps=np.int64(40), curve=(1.0, np.float32(0.5)), bad=math.nan)
    saved = json.loads(results.path.read_text(encoding="utf-8"))
    assert results.path == isolated_build / "results" / "03_datos_buenos_vs_malos.json"
    assert saved["profile"] == "mini"
    assert saved["values"] == {"chrf_good": 41.5, "steps": 40, "curve": [1.0, 0.5], "bad": None}
    assert load_results("03_datos_buenos_vs_malos")["values"]["steps"] == 40


def test_timer_records_even_when_the_block_fails(isolated_build):
    results = Results("x", profile="mini")
    try:
        with results.timer("train_s"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert results.values["train_s"] >= 0
    assert not list(results.path.parent.glob(".x.json.*")), "temporary file left behind"


def test_missing_results_is_none(isolated_build):
    assert load_results("never_ran") is None
