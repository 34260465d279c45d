"""An outside check of notebook 03's claim (issue 14): good data beat bad data on real pairs.

The notebook's own configuration and seed (``benchmarks/good_bad_seeds.py --seeds 42``, which
runs the notebook's tagged cells) train the good- and the bad-data model once; both are scored
on the course's held-out test set and on real English→Spanish pairs nobody in the course
wrote: Tatoeba, FLORES-200, WMT newstest and MT4All in ``../shared/real-data/en_es_real.jsonl``
(next to the clone, as in CI; ``COURSE_REAL_DATA`` points elsewhere). The figures are kept in
``build/benchmarks/good_bad_real_pairs.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from utils.core.paths import build_dir, repo_root
from utils.core.settings import get_settings

ROOT = repo_root()
REAL = Path(os.environ.get("COURSE_REAL_DATA") or ROOT.parent / "shared" / "real-data") / "en_es_real.jsonl"


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_file(), reason=f"sin datos reales en {REAL.parent} (../shared junto al clon)")
def test_good_data_beat_bad_data_on_real_pairs_nobody_here_wrote(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    spec = importlib.util.spec_from_file_location("good_bad_seeds", ROOT / "benchmarks" / "good_bad_seeds.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = build_dir() / "benchmarks" / "good_bad_real_pairs.json"
    seed = get_settings("mini").good_bad.seed
    assert bench.main(["--seeds", str(seed), "--real", str(REAL), "--out", str(out)]) == 0
    runs = {run["data"]: run for run in json.loads(out.read_text(encoding="utf-8"))}
    print(capsys.readouterr().out)  # the benchmark's table, for the log
    good, bad = runs["good"]["real_scores"], runs["bad"]["real_scores"]
    assert runs["good"]["real_pairs"] == runs["bad"]["real_pairs"] >= 200
    for scores in (good, bad, *(run["scores"][str(run["steps"])] for run in runs.values())):
        assert 0 < scores["chrf"] < 100 and 0 <= scores["bleu"] < 100, scores
    # The outcome is reported, not asserted: it is the finding (README §Cuaderno 03, «Fuera del curso»).
    # Measured 2026-11-29 (36 steps, seed 42): course test set chrF 33.0 vs 29.7, BLEU 11.9 vs 5.2;
    # real pairs chrF 18.1 vs 20.1 (reversed), BLEU 2.7 vs 1.9. With 42 steps (issue 14): course test set
    # chrF 42.3 vs 30.4, BLEU 16.4 vs 3.7; real pairs chrF 20.1 vs 18.9, BLEU 3.1 vs 2.1.
    print(
        f"pares reales: chrF bueno−malo {good['chrf'] - bad['chrf']:+.2f}, BLEU {good['bleu'] - bad['bleu']:+.2f}; "
        f"test del curso: chrF {runs['good']['scores'][str(runs['good']['steps'])]['chrf'] - runs['bad']['scores'][str(runs['bad']['steps'])]['chrf']:+.2f}"
    )
