"""Notebook 01 run by a careless learner (issue 15): re-running its translation cells in one kernel
records the same results as a single run.

The cells that translate (by hand with ``model.generate``, the background run killed with
``kill -9``, the resumed shards, the LLM backend, the speed table) each run twice in a row; the
results file at the end must equal what the same kernel recorded after running each cell once
(``rerun_from``: the notebook once, then again from the first translation cell with the repeats).
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from careless import ROOT, comparable, kernel_env, run_notebook

from utils.core.paths import notebooks_dir

NOTEBOOK = notebooks_dir() / "01_traducir_llava_instruct.ipynb"
# Fewer rows (4 chunks of 10, so the killed shard still has two), one LLM row, short outputs.
SHORT = {"translate.rows": 40, "translate.llm_rows": 1, "translate.max_new_tokens": 8}
TRANSLATES = ("model.generate(", "start_background_run(", "run_translation(")


def translation_cell(source: str) -> bool:
    """The cells a learner re-runs to 'translate again' (not the speed table: it records only timings)."""
    return any(token in source for token in TRANSLATES) and "CTranslate2Backend(" not in source


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_rerunning_the_translation_cells_records_the_same_results(tmp_path):
    def run(name, **kwargs):
        build = tmp_path / name
        port = str(_free_port())  # each kernel starts (and here stops) its own llama.cpp server
        env = kernel_env(build, SHORT, COURSE_ROOT=str(ROOT), COURSE_LLM_PORT=port)
        try:
            return run_notebook(NOTEBOOK, build / "results" / f"{NOTEBOOK.stem}.json", env=env, timeout=600, **kwargs)
        finally:
            subprocess.run(
                [sys.executable, "-m", "utils.services.llm_server", "stop", "--port", port],
                env={**env, "PYTHONPATH": str(ROOT / "src")},
                check=False,
                capture_output=True,
                timeout=60,
            )

    # One kernel (issue 14: test time): the whole notebook once (``single``), then, as a learner going back
    # up, from the first translation cell to the end again with every translation cell run twice in a row.
    twice = run("careless", repeat=translation_cell, rerun_from=TRANSLATES[0])
    assert len(twice.repeats) == 4, f"{len(twice.repeats)} translation cells ran twice, not 4"
    values = twice.single
    assert values["seq2seq_rows_in"] == 40 and values["llm_rows"] == 1  # the short run really ran
    assert values["seq2seq_rows_translated"] + values["seq2seq_rows_quarantined"] == 40

    # Speeds and their ratios differ between any two kernels (the speed table records nothing else).
    def stable(results):
        return {k: v for k, v in comparable(results).items() if not k.startswith("speed_")}

    assert stable(twice.results) == stable(values)
