"""An outside check of notebook 03's claim (issue 14): do good data beat bad data on real pairs?

The notebook's own configuration and seed (``benchmarks/good_bad_seeds.py --seeds 42``, which
runs the notebook's tagged cells) train the good- and the bad-data model once; both are scored
on the course's held-out test set and on real English→Spanish pairs nobody in the course
wrote: Tatoeba, FLORES-200, WMT newstest and MT4All in ``../shared/real-data/en_es_real.jsonl``
(next to the clone, as in CI; ``COURSE_REAL_DATA`` points elsewhere). The figures are kept in
``build/benchmarks/good_bad_real_pairs.json``.

``make test`` runs the notebooks before the tests (issue 13): when notebook 03 saved its adapters in
``build/03_buenos_vs_malos/adaptadores`` with the fingerprint of the very run the benchmark would
train (same settings, data, code and library versions: ``utils.core.finetune.training_fingerprint``),
the benchmark scores them instead of training them again (``--reuse``); otherwise it trains them
as before.  The test prints which path each arm took.
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
def test_good_and_bad_models_scored_on_real_pairs_nobody_here_wrote(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    spec = importlib.util.spec_from_file_location("good_bad_seeds", ROOT / "benchmarks" / "good_bad_seeds.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = build_dir() / "benchmarks" / "good_bad_real_pairs.json"
    seed = get_settings("mini").good_bad.seed
    adapters = build_dir() / "03_buenos_vs_malos" / "adaptadores"
    assert bench.main(["--seeds", str(seed), "--real", str(REAL), "--out", str(out), "--reuse", str(adapters)]) == 0
    runs = {run["data"]: run for run in json.loads(out.read_text(encoding="utf-8"))}
    table = capsys.readouterr().out
    with capsys.disabled():  # on the terminal even when the test passes: the log says which path was taken
        print(table)
        for name, run in runs.items():
            how = (
                f"adaptador del cuaderno 03 reutilizado ({run['reused_adapter']})"
                if run["reused_adapter"]
                else "entrenado aquí"
            )
            print(f"pares reales, {name}: {how}")
    good, bad = runs["good"]["real_scores"], runs["bad"]["real_scores"]
    assert runs["good"]["real_pairs"] == runs["bad"]["real_pairs"] >= 200
    for scores in (good, bad, *(run["scores"][str(run["steps"])] for run in runs.values())):
        assert 0 < scores["chrf"] < 100 and 0 <= scores["bleu"] < 100, scores
    # Measured 2026-11-29 (36 steps, seed 42): course test set chrF 33.0 vs 29.7, BLEU 11.9 vs 5.2;
    # real pairs chrF 18.1 vs 20.1 (reversed), BLEU 2.7 vs 1.9. With 42 steps (issue 14): course test set
    # chrF 42.3 vs 30.4, BLEU 16.4 vs 3.7; real pairs chrF 20.1 vs 18.9, BLEU 3.1 vs 2.1. Real pairs scored
    # on the merged adapters (2026-11-30): chrF 20.3 vs 18.8, BLEU 3.2 vs 2.1.
    with capsys.disabled():
        print(
            f"pares reales: chrF bueno−malo {good['chrf'] - bad['chrf']:+.2f}, BLEU {good['bleu'] - bad['bleu']:+.2f}; "
            f"test del curso: chrF {runs['good']['scores'][str(runs['good']['steps'])]['chrf'] - runs['bad']['scores'][str(runs['bad']['steps'])]['chrf']:+.2f}"
        )
    # The gap on real pairs is reported, not required: it is a measurement of the notebook's claim outside
    # its own data (+1.2 chrF with 42 steps, reversed with 36), and it may differ on other CPUs (bf16 autocast
    # is used only where the CPU computes it), so a CI runner must not fail on an honest negative result.
    # What must hold is that both models were scored and differ.
    assert (good["chrf"], good["bleu"]) != (bad["chrf"], bad["bleu"]), "los dos modelos puntúan igual: ¿el mismo?"
