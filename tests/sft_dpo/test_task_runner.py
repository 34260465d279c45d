"""Resumable standalone runs of distilabel tasks: cache hits, invalidation, torn lines."""

from __future__ import annotations

from scripted_llm import ScriptedLLM

from utils.sft_dpo import task_runner
from utils.sft_dpo.grounded_instructions import GroundedInstruction
from utils.sft_dpo.task_runner import output_tokens, row_key, run_task

GOOD = "[[[Usuario]]] ¿Dónde está la Alhambra?\n[[[Asistente]]] La Alhambra está en Granada."
ROWS = [{"title": f"Artículo {i}", "content": f"Contenido número {i}."} for i in range(5)]


def _task(**generation):
    return GroundedInstruction(name="genstruct", llm=ScriptedLLM(replies=[GOOD], generation_kwargs=generation))


def test_second_run_reads_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache.jsonl"
    task, stats = _task(), {}
    first = run_task(task, ROWS, cache=cache, batch_size=2, stats=stats)
    assert task.llm.calls == 5 and stats["generated"] == 5 and stats["cached"] == 0
    assert stats["output_tokens"] == output_tokens(first, "genstruct") > 0
    monkeypatch.setattr(task_runner, "SESSION_ID", "another-kernel")  # e.g. the notebook run again tomorrow
    again_task, again = _task(), {}
    second = run_task(again_task, ROWS, cache=cache, stats=again)
    assert again_task.llm.calls == 0 and again == {"generated": 0, "cached": 5, "output_tokens": 0, "seconds": 0.0}
    assert [r["instruction"] for r in second] == [r["instruction"] for r in first]
    assert [r["title"] for r in second] == [r["title"] for r in ROWS]  # order kept


def test_interrupted_run_resumes_only_the_missing_rows(tmp_path):
    cache = tmp_path / "cache.jsonl"
    run_task(_task(), ROWS[:3], cache=cache, batch_size=3)
    with cache.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "torn line without an en')  # an interruption mid-write
    task = _task()
    rows = run_task(task, ROWS, cache=cache, batch_size=2)
    assert task.llm.calls == 2 and len(rows) == 5


def test_changed_settings_do_not_reuse_stale_answers(tmp_path):
    cache = tmp_path / "cache.jsonl"
    run_task(_task(temperature=0.7), ROWS, cache=cache)
    hotter = _task(temperature=1.2)
    run_task(hotter, ROWS, cache=cache)
    assert hotter.llm.calls == 5
    assert row_key(_task(temperature=0.7), ROWS[0]) != row_key(hotter, ROWS[0])
    assert row_key(_task(), ROWS[0]) != row_key(_task(), ROWS[1])


def test_no_rows_no_calls():
    task, stats = _task(), {}
    assert run_task(task, [], stats=stats) == [] and task.llm.calls == 0 and stats["generated"] == 0


def test_rerun_in_the_same_kernel_reports_what_the_first_run_did(tmp_path):
    """A careless re-run of the cell: nothing is generated again, and the stats the
    notebook records (rows, tokens, seconds) are those of the run that generated them."""
    cache = tmp_path / "cache.jsonl"
    task, first = _task(), {}
    rows = run_task(task, ROWS, cache=cache, batch_size=2, stats=first)
    assert first["generated"] == 5 and first["seconds"] >= 0 and first["output_tokens"] > 0
    again_task, again = _task(), {}
    rows_again = run_task(again_task, ROWS, cache=cache, batch_size=2, stats=again)
    assert again_task.llm.calls == 0
    assert again == first
    assert [r["instruction"] for r in rows_again] == [r["instruction"] for r in rows]


def test_seconds_are_the_wall_time_of_the_generating_run(tmp_path, monkeypatch):
    cache = tmp_path / "cache.jsonl"
    clock = iter([100.0, 103.0, 110.0, 111.0, 200.0])  # start, batches 1-3 (3, 7, 1 s); start of the re-run
    monkeypatch.setattr(task_runner, "_clock", lambda: next(clock))
    stats = {}
    run_task(_task(), ROWS, cache=cache, batch_size=2, stats=stats)
    assert stats["seconds"] == 11.0
    assert run_task(_task(), ROWS[:2], cache=cache, stats=stats) and stats["seconds"] == 3.0  # batch 1's rows
