"""Notebook 03 run by a careless learner: re-running the training and evaluation cells must
not change what the notebook records (issue 15.2: the second run kept training the same
model, so the losses restarted low and the good model's chrF jumped from 33.3 to 44.1)."""

from __future__ import annotations

import pytest
from careless import ROOT, comparable, kernel_env, run_notebook

from utils.core.paths import notebooks_dir

NOTEBOOK = notebooks_dir() / "03_datos_buenos_vs_malos.ipynb"
# A short run (a few steps, a few test pairs): enough for a second training to show.
SHORT = {
    "good_bad.max_steps": 2,
    "good_bad.batch_size": 2,
    "good_bad.logging_steps": 1,
    "good_bad.eval_pairs": 3,
    "good_bad.max_new_tokens": 8,
    "good_bad.eval_batch_size": 3,
}


def training_or_evaluation(source: str) -> bool:
    """The cells a learner re-runs to 'try again': they train, build a trainer or translate the test."""
    return any(token in source for token in (".train()", "crear_trainer(", "traducir(modelo"))


@pytest.mark.slow
def test_rerunning_training_and_evaluation_cells_records_the_same_results(tmp_path):
    def run(name, **kwargs):
        build = tmp_path / name
        env = kernel_env(build, SHORT, COURSE_ROOT=str(ROOT))
        return run_notebook(NOTEBOOK, build / "results" / f"{NOTEBOOK.stem}.json", env=env, timeout=600, **kwargs)

    once = run("once").results
    twice = run("twice", repeat=training_or_evaluation).results
    assert once["steps"] == 2 and once["final_loss_good"] is not None
    assert comparable(twice) == comparable(once)
