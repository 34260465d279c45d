"""Careless learner, notebook 02: the generation cells run twice in one kernel.

Re-running the cell that runs the distilabel ``Pipeline`` (section 4) must not generate
again, double rows or pass a cache read off as a measurement: distilabel's cache returns
the finished run, the counts the notebook records equal what a run without repeats records,
and no wall time is recorded for the cached re-run.  Mini profile, one
article (``COURSE_SETTINGS_OVERRIDES``), the real llama.cpp and Argilla servers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from careless import comparable, run_notebook

from utils.core.paths import repo_root, run_dir
from utils.services import argilla_server, llm_server

NOTEBOOK = repo_root() / "notebooks" / "02_datos_sft_dpo_distilabel_argilla.ipynb"
GENERATION_CELLS = ("pipeline.run(",)
SHORT = {"sft_dpo.articles": 1}  # one article keeps each kernel run short


@pytest.fixture(scope="module")
def services():
    """The two servers the notebook uses (started here if `make test` did not)."""
    started = [srv for srv in (llm_server, argilla_server) if not srv.status().healthy]
    llm_server.ensure_running()
    argilla_server.ensure_running()
    yield
    for srv in started:
        srv.stop()


def _run(tmp_path: Path, monkeypatch, name: str, **kwargs):
    build = tmp_path / name  # its own LLM cache and results: each run generates
    build.mkdir()
    (build / "run").symlink_to(run_dir(), target_is_directory=True)  # the running servers' pid files
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    monkeypatch.setenv("COURSE_BUILD_DIR", str(build))
    monkeypatch.setenv("COURSE_SETTINGS_OVERRIDES", json.dumps(SHORT))
    return run_notebook(NOTEBOOK, tmp_path / name / "results" / f"{NOTEBOOK.stem}.json", timeout=300, **kwargs)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_running_the_generation_cells_twice_records_what_one_run_records(services, tmp_path, monkeypatch):
    """One kernel (issue 14: test time): the whole notebook once (``single``, a fresh generation), then,
    as a learner going back up, from the pipeline cell to the end again with that cell run twice."""
    careless = _run(
        tmp_path,
        monkeypatch,
        "careless",
        repeat=lambda source: any(mark in source for mark in GENERATION_CELLS),
        rerun_from=GENERATION_CELLS[0],
    )
    once, twice = careless.single, careless.results
    assert len(careless.repeats) == 1  # the pipeline cell found and repeated
    for index, first, second in careless.repeats:
        changed = {
            key: (first.get(key), second.get(key))
            for key in first.keys() | second.keys()
            if first.get(key) != second.get(key)
        }
        assert not changed, f"cell {index}: the re-run changed {changed}"
    assert once["pipeline_s"] > 0  # the single run generated
    assert twice["sft_generated"] == 1 and twice["judged"] <= 1  # one article: no doubled rows
    assert twice["pipeline_s"] is None  # the re-runs read distilabel's cache: no time is claimed
    assert comparable(twice) == comparable(once)
