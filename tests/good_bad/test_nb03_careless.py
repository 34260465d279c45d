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
    """One kernel (issue 14: test time): the whole notebook once (``single``), then, as a learner going
    back up, from the training configuration to the end again with every training and evaluation
    cell run twice in a row; what it records at the end must equal the single run."""
    build = tmp_path / "build"
    env = kernel_env(build, SHORT, COURSE_ROOT=str(ROOT))
    careless = run_notebook(
        NOTEBOOK,
        build / "results" / f"{NOTEBOOK.stem}.json",
        env=env,
        timeout=600,
        repeat=training_or_evaluation,
        rerun_from="lora_config = LoraConfig(",
    )
    once, twice = careless.single, careless.results
    repeated = {index for index, *_ in careless.repeats}
    assert len(repeated) >= 4, repeated  # configuration, base evaluation, both trainings
    assert once["steps"] == 2 and once["final_loss_good"] is not None
    assert comparable(twice) == comparable(once)
