"""Careless learner, notebook 02: the generation cells run twice in one kernel.

Re-running the SFT generation cell (section 3) or the candidates+judge cell (section 4)
must not generate again, double rows or replace a measurement with a cache read: what the
notebook records must equal what a run without repeats records.  Mini profile, one
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
GENERATION_CELLS = ("run_task(genstruct", "run_task(judge")
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


def _run(tmp_path: Path, monkeypatch, name: str, repeat=None):
    build = tmp_path / name  # its own LLM cache and results: each run generates
    build.mkdir()
    (build / "run").symlink_to(run_dir(), target_is_directory=True)  # the running servers' pid files
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    monkeypatch.setenv("COURSE_BUILD_DIR", str(build))
    monkeypatch.setenv("COURSE_SETTINGS_OVERRIDES", json.dumps(SHORT))
    return run_notebook(NOTEBOOK, tmp_path / name / "results" / f"{NOTEBOOK.stem}.json", repeat=repeat, timeout=300)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_running_the_generation_cells_twice_records_what_one_run_records(services, tmp_path, monkeypatch):
    twice = _run(
        tmp_path, monkeypatch, "twice", repeat=lambda source: any(mark in source for mark in GENERATION_CELLS)
    )
    assert len(twice.repeats) == 2  # both generation cells found and repeated
    for index, first, second in twice.repeats:
        changed = {
            key: (first.get(key), second.get(key))
            for key in first.keys() | second.keys()
            if first.get(key) != second.get(key)
        }
        assert not changed, f"cell {index}: the re-run changed {changed}"
    assert twice.results["llm_rows_from_cache"] == 0 and twice.results["llm_rows_generated"] > 0
    assert twice.results["sft_generation_s"] > 0 and twice.results["llm_tokens_per_s"]

    once = _run(tmp_path, monkeypatch, "once")
    assert comparable(twice.results) == comparable(once.results)
