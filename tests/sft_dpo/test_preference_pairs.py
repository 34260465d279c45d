"""Preference data: chosen/rejected from ratings, the exercise check, one-call UltraFeedback."""

from __future__ import annotations

import warnings

import pytest
from nb02_fixtures import llm_endpoint  # noqa: F401 (fixture)
from scripted_llm import ScriptedLLM

from utils.sft_dpo.generation_llms import ultrafeedback_grammar
from utils.sft_dpo.preference_pairs import (
    GROUNDED_SOURCE,
    check_preference_exercise,
    preference_pair,
    why_no_pair,
    with_candidates,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from distilabel.steps.tasks import UltraFeedback

GENS = ["Mala respuesta.", "La mejor respuesta, en Granada.", "Una respuesta regular."]


def test_best_against_worst():
    pair = preference_pair("¿Dónde está la Alhambra?", GENS, [2, 5, 3])
    assert pair["prompt"] == [{"role": "user", "content": "¿Dónde está la Alhambra?"}]
    assert pair["chosen"] == [{"role": "assistant", "content": GENS[1]}]
    assert pair["rejected"] == [{"role": "assistant", "content": GENS[0]}]
    assert (pair["chosen_rating"], pair["rejected_rating"]) == (5, 2)


@pytest.mark.parametrize(
    ("gens", "ratings", "reason"),
    [
        (GENS[:2], [3, 3], "tie"),
        (GENS[:2], [4, None], "ratings_unparsed"),
        (GENS, [4, 2], "ratings_unparsed"),  # fewer ratings than candidates
        (["Igual.", "Igual."], [5, 1], "same_text"),
    ],
)
def test_no_pair_when_there_is_nothing_to_learn(gens, ratings, reason):
    assert preference_pair("¿Qué?", gens, ratings) is None
    assert why_no_pair(gens, ratings) == reason


def test_candidates_put_the_grounded_answer_first_and_drop_failed_rows():
    rows = [{"instruction": "¿A?", "response": "Con contexto A.", "distilabel_metadata": {}},
            {"instruction": "¿B?", "response": "Con contexto B."}]  # fmt: skip
    closed = [[{"generation": "Sin contexto A.", "model_name": "m1"}, {"generation": None, "model_name": "m1"}]]
    ready, dropped = with_candidates(rows, closed)
    assert dropped == 1
    assert ready == [{"instruction": "¿A?", "response": "Con contexto A.",
                      "generations": ["Con contexto A.", "Sin contexto A."], "sources": [GROUNDED_SOURCE, "m1"]}]  # fmt: skip


def test_exercise_check_passes_the_reference_and_fails_wrong_answers(capsys):
    assert check_preference_exercise(preference_pair) is True

    def first_vs_last(instruction, generations, ratings):  # ignores the ratings
        return preference_pair(instruction, generations, list(range(len(generations), 0, -1)))

    def no_tie_check(instruction, generations, ratings):
        best = max(range(len(ratings)), key=lambda i: ratings[i] or 0)
        worst = min(range(len(ratings)), key=lambda i: ratings[i] or 0)
        return {"prompt": [{"role": "user", "content": instruction}],
                "chosen": [{"role": "assistant", "content": generations[best]}],
                "rejected": [{"role": "assistant", "content": generations[worst]}]}  # fmt: skip

    def plain_strings(instruction, generations, ratings):
        pair = preference_pair(instruction, generations, ratings)
        return pair and {k: v[0]["content"] for k, v in pair.items() if k in ("prompt", "chosen", "rejected")}

    def crashes(instruction, generations, ratings):
        raise ValueError("todavía no")

    for wrong in (first_vs_last, no_tie_check, plain_strings, crashes):
        assert check_preference_exercise(wrong) is False, wrong.__name__
    assert "ValueError: todavía no" in capsys.readouterr().out


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
    assert preference_pair("¿Dónde?", GENS, rows[0]["ratings"])["chosen"][0]["content"] == GENS[2]
    assert rows[1]["ratings"] == [None] and preference_pair("¿Qué?", GENS, rows[1]["ratings"]) is None


def test_one_call_judgement_on_the_real_server(llm_endpoint):
    """UltraFeedback + the grammar on SmolLM2: one request rates every candidate."""
    from utils.sft_dpo.generation_llms import make_llm

    judge = UltraFeedback(
        aspect="overall-rating",
        llm=make_llm("local:smollm2-135m-instruct-gguf", max_new_tokens=200, temperature=0.0,
                     grammar=ultrafeedback_grammar(2), seed=0),
    )  # fmt: skip
    judge.load()
    row = next(judge.process([{"instruction": "¿Dónde está la Alhambra?", "generations": GENS[1:]}]))[0]
    judge.unload()
    assert len(row["ratings"]) == 2 and all(r in {1, 2, 3, 4, 5} for r in row["ratings"]), row
    assert all(isinstance(r, str) and r for r in row["rationales"])
