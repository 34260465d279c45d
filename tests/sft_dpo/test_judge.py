"""The judge of notebook 02: UltraFeedback reads what the grammar forces, all candidates in one call."""

from __future__ import annotations

import warnings

import pytest
from nb02_fixtures import llm_endpoint, notebook_cells  # noqa: F401 (fixture)
from scripted_llm import ScriptedLLM

from utils.sft_dpo.generation_llms import ultrafeedback_grammar

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from distilabel.steps.tasks import UltraFeedback

GENS = ["Mala respuesta.", "La mejor respuesta, en Granada.", "Una respuesta regular."]


def test_ultrafeedback_parses_what_the_grammar_forces():
    grammar = ultrafeedback_grammar(3)
    assert grammar.count("#### Output for Text") == 3
    with pytest.raises(ValueError):
        ultrafeedback_grammar(0)
    reply = ("#### Output for Text 1\nRating: 4\nRationale: Correcta y clara.\n\n"
             "#### Output for Text 2\nRating: 2\nRationale: Inventa datos.\n\n"
             "#### Output for Text 3\nRating: 5\nRationale: Excelente.")  # fmt: skip
    judge = UltraFeedback(llm=ScriptedLLM(replies=[reply, "no sigue el formato"]), aspect="overall-rating")
    judge.load()
    rows = next(
        judge.process([{"instruction": "¿Dónde?", "generations": GENS}, {"instruction": "¿Qué?", "generations": GENS}])
    )
    assert rows[0]["ratings"] == [4, 2, 5] and rows[0]["rationales"][1] == "Inventa datos."
    assert rows[1]["ratings"] == [None]  # an unreadable judgement is a missing rating, not a crash


def test_one_call_judgement_on_the_real_server(llm_endpoint):
    """The notebook's judge (its make_llm + UltraFeedback + the grammar) on SmolLM2: one request rates all."""
    cells = notebook_cells("mini")
    judge = UltraFeedback(
        aspect="overall-rating",
        llm=cells.make_llm("local:smollm2-135m-instruct-gguf", 200, 0.0, ultrafeedback_grammar(2), 0),
    )
    judge.load()
    row = next(judge.process([{"instruction": "¿Dónde está la Alhambra?", "generations": GENS[1:]}]))[0]
    judge.unload()
    assert len(row["ratings"]) == 2 and all(r in {1, 2, 3, 4, 5} for r in row["ratings"]), row
    assert all(isinstance(r, str) and r for r in row["rationales"])
