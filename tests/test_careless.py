"""The careless-learner runner (``tests/careless.py``) on a three-cell notebook: a single run
and a careless re-run in ONE kernel (``rerun_from``) tell an idempotent cell from one that
keeps state, as two kernels did."""

from __future__ import annotations

import nbformat
import pytest
from careless import comparable, kernel_env, run_notebook

SETUP = 'from utils.core.notebook import start\nnb = start("05", verbose=False)'
RESET = "total = 0"
STEP = "total += 1\nnb.results.record(total=total, step_s=0.1)"


@pytest.fixture
def notebook(tmp_path):
    path = tmp_path / "cuaderno.ipynb"
    cells = [nbformat.v4.new_code_cell(source) for source in (SETUP, RESET, STEP)]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def _run(notebook, tmp_path, name, **options):
    build = tmp_path / name
    results = build / "results" / "05_prompting_llm_local.json"
    return run_notebook(notebook, results, env=kernel_env(build, {}), timeout=120, **options)


def test_one_kernel_gives_the_single_run_and_the_careless_rerun(notebook, tmp_path):
    idempotent = _run(notebook, tmp_path, "from-reset", rerun_from=RESET)
    assert idempotent.single == {"total": 1, "step_s": 0.1}
    assert comparable(idempotent.results) == comparable(idempotent.single)  # going back to the reset: fine

    stateful = _run(notebook, tmp_path, "step-again", rerun_from="total += 1")
    assert stateful.single["total"] == 1 and stateful.results["total"] == 2  # the re-run kept counting
    assert comparable(stateful.results) != comparable(stateful.single)

    twice = _run(notebook, tmp_path, "twice", rerun_from=RESET, repeat=lambda source: "total +=" in source)
    assert twice.single["total"] == 1  # no repeat in the first pass: it is a single run
    assert [(first["total"], second["total"]) for _, first, second in twice.repeats] == [(1, 2)]


def test_again_and_rerun_from_do_not_mix(notebook):
    with pytest.raises(ValueError, match="either again or rerun_from"):
        run_notebook(notebook, again=("total = 0", "total +="), rerun_from="total = 0")
