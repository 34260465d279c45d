"""Notebook 05 run by a careless learner (issue 15): re-running the generation and chat cells
must start over, not continue from what the first run left behind.

The trap is state that outlives a cell: if the chat loop's ``messages`` were created in an
earlier cell, running the loop again would continue the old conversation (twice the turns,
longer prompts); if the JSON tallies were, a second run would count every review twice.  The
test runs the notebook once, then goes back up and runs it again with those cells executed
twice in a row, and checks (1) in the kernel, right before each section's results cell, that the
history and the tallies hold exactly one run, and (2) that the recorded counts that do not
depend on the model's wording are the same.  Both runs share one kernel (``rerun_from``): the
notebook once, then again from the memory demo with the repeats.

What is NOT compared, and why: the model's answers themselves.  The llama-cpp-python server
reuses the cached prompt prefix of the previous request, so an identical request evaluates its
tokens in different batches and, at temperature 0, can still pick another token: measured, a
second run of the order cell gave a total of 16.90 € where the first gave 5.20 €, with every
other value equal.  Also left out: the usage summary (re-running cells makes more calls), the
load average and the timings.
"""

from __future__ import annotations

import socket

import pytest
from careless import ROOT, kernel_env, run_notebook

from utils.core.paths import notebooks_dir
from utils.services.llm_server import stop

NOTEBOOK = notebooks_dir() / "05_prompting_llm_local.ipynb"
# Fewer and shorter answers, same cells (the chat replies' length does not change the turns or the history).
SHORT = {"prompting.json_reviews": 1, "prompting.max_tokens": 12, "prompting.chat_max_tokens": 12}
#: Recorded counts fixed by the notebook's inputs, not by what the model says.
STRUCTURE = (
    "settings_overrides",
    "model",
    "memory_prompt_tokens_alone",
    "json_prompt_total",
    "json_fewshot_total",
    "json_schema_total",
    "iteration_limited",
    "tasks_language_judged",
    "chat_turns",
)
#: Probes run in the kernel right before the results cell that contains the marker.
PROBES = {
    "chat_turns=chat_turns": (
        "assert len(messages) == 1 + 2 * len(SCRIPT), f'el historial tiene {len(messages)} mensajes'"
    ),
    '"json_prompt_"': "assert [t.total for t in tallies.values()] == [len(json_reviews)] * 3, tallies",
}


def generation_or_chat(source: str) -> bool:
    """The cells a learner re-runs to 'ask again': the memory demo, the JSON strategies, the
    chat loop and the final order."""
    return any(token in source for token in ("introduction = {", "tallies = {", "while True:", "order = ask_json("))


@pytest.mark.slow
@pytest.mark.server
def test_rerunning_generation_and_chat_cells_starts_over(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    build = tmp_path / "build"
    monkeypatch.setenv("COURSE_BUILD_DIR", str(build))  # where the kernel's server keeps its pid file
    monkeypatch.delenv("LLM_BASE_URL", raising=False)  # the course's own server, started by the notebook
    env = kernel_env(build, SHORT, COURSE_ROOT=str(ROOT), COURSE_LLM_PORT=str(port))
    results = build / "results" / f"{NOTEBOOK.stem}.json"
    try:
        # One kernel (issue 14: test time): the whole notebook once (``single``), then, as a learner going
        # back up, from the memory demo to the end again with those cells run twice in a row.  The probes
        # run in both passes: the second pass also starts with everything the first one left behind.
        careless = run_notebook(
            NOTEBOOK,
            results,
            env=env,
            repeat=generation_or_chat,
            rerun_from="introduction = {",
            extra_cells=PROBES,
            timeout=900,
        )
    finally:
        stop(port)
    once, twice = careless.single, careless.results
    assert len(careless.repeats) == 4, [i for i, *_ in careless.repeats]
    assert once["chat_turns"] == 5 and once["json_prompt_total"] == 1
    assert twice["llm_calls"] > once["llm_calls"]  # the cells did run again
    assert twice.keys() == once.keys()
    assert {k: twice[k] for k in STRUCTURE} == {k: once[k] for k in STRUCTURE}
