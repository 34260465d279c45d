"""Preference (DPO) data: candidate answers, one UltraFeedback judgement, chosen/rejected.

For each instruction the notebook gathers candidate answers — the grounded answer written
with the article in view, plus one closed-book answer per model in
``cfg.candidate_models`` (written without the article) — and asks a judge to rate **all
candidates in one call** with distilabel's ``UltraFeedback`` task (``overall-rating``:
a 1–5 rating and a rationale per candidate).  Rating candidates side by side gives
consistent scores; rating them in separate calls does not (the Notus lesson).

:func:`preference_pair` turns ratings into ``prompt``/``chosen``/``rejected``: the best
rated answer against the worst, and no pair when ratings are missing or tied.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from utils.core.settings import CourseSettings, SftDpoSettings
from utils.sft_dpo.generation_llms import make_llm, ultrafeedback_grammar
from utils.sft_dpo.grounded_instructions import ANSWER_GRAMMAR

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.steps.tasks import TextGeneration, UltraFeedback

#: System prompt of the closed-book candidates (they do not see the article).
CLOSED_BOOK_SYSTEM = "Eres un asistente útil. Responde en español, en una o dos frases completas."
GROUNDED_SOURCE = "con_contexto"


def closed_book_tasks(cfg: SftDpoSettings, settings: CourseSettings | None = None) -> list[TextGeneration]:
    """One ``TextGeneration`` per candidate model: answers the instruction without the article."""
    return [
        TextGeneration(
            name=f"sin_contexto_{i}",
            system_prompt=CLOSED_BOOK_SYSTEM,
            llm=make_llm(
                model,
                max_new_tokens=cfg.max_new_tokens_answer,
                temperature=cfg.temperature,
                grammar=ANSWER_GRAMMAR,
                seed=cfg.seed + i,
                settings=settings,
                batch_size=cfg.batch_size,
            ),
        )
        for i, model in enumerate(cfg.candidate_models, start=1)
    ]


def judge_task(cfg: SftDpoSettings, settings: CourseSettings | None = None) -> UltraFeedback:
    """UltraFeedback (``overall-rating``) rating all ``cfg.candidates`` answers in one call."""
    return UltraFeedback(
        name="juez_ultrafeedback",
        aspect="overall-rating",
        llm=make_llm(cfg.judge_model, max_new_tokens=cfg.max_new_tokens_judge, temperature=0.0,
                     grammar=ultrafeedback_grammar(cfg.candidates), seed=cfg.seed, settings=settings,
                     batch_size=cfg.batch_size),
    )  # fmt: skip


def with_candidates(
    rows: Sequence[dict[str, Any]], closed_book: Sequence[Sequence[dict[str, Any]]]
) -> tuple[list, int]:
    """Add ``generations`` (grounded answer first) and ``sources`` to each row.

    ``closed_book[k][i]`` is candidate model k's output for row i.  Rows where a
    candidate is missing (the LLM call failed) are dropped and counted.

    Returns:
        The rows ready for the judge, and how many were dropped.
    """
    ready, dropped = [], 0
    for i, row in enumerate(rows):
        answers = [outputs[i].get("generation") for outputs in closed_book]
        if any(not isinstance(a, str) or not a.strip() for a in answers):
            dropped += 1
            continue
        ready.append(
            {
                **{k: v for k, v in row.items() if k != "distilabel_metadata"},
                "generations": [row["response"], *[a.strip() for a in answers]],
                "sources": [
                    GROUNDED_SOURCE,
                    *[out[i].get("model_name", f"modelo_{k}") for k, out in enumerate(closed_book, 1)],
                ],
            }
        )
    return ready, dropped


def preference_pair(instruction: str, generations: Sequence[str], ratings: Sequence[int | None]) -> dict | None:
    """``prompt``/``chosen``/``rejected`` (TRL's chat format) from judged candidates.

    Chosen is the best-rated answer, rejected the worst-rated one (the first one on ties
    within each group).  Returns ``None`` when a rating is missing, when the ratings do not
    match the candidates, when all ratings are equal, or when both texts are the same.
    """
    if len(generations) < 2 or len(ratings) != len(generations) or any(r is None for r in ratings):
        return None
    order = sorted(range(len(generations)), key=lambda i: -ratings[i])  # stable: first wins ties
    best, worst = order[0], order[-1]
    if ratings[best] == ratings[worst] or generations[best].strip() == generations[worst].strip():
        return None
    return {
        "prompt": [{"role": "user", "content": instruction}],
        "chosen": [{"role": "assistant", "content": generations[best]}],
        "rejected": [{"role": "assistant", "content": generations[worst]}],
        "chosen_rating": ratings[best],
        "rejected_rating": ratings[worst],
    }


def why_no_pair(generations: Sequence[str], ratings: Sequence[int | None]) -> str:
    """Why :func:`preference_pair` returned ``None`` (for the notebook's counts)."""
    if len(ratings) != len(generations) or any(r is None for r in ratings):
        return "ratings_unparsed"
    if len(set(ratings)) == 1:
        return "tie"
    return "same_text"


def check_preference_exercise(build_pair) -> bool:
    """Self-check of the exercise: ``build_pair(instruction, generations, ratings)``.

    Runs it on judged rows with a clear winner, a tie and a missing rating, and validates
    what it returns with :func:`utils.sft_dpo.dataset_checks.check_dpo_rows`.
    """
    from utils.core.exercises import Expectation, report
    from utils.sft_dpo.dataset_checks import check_dpo_rows

    instruction = "¿En qué ciudad está la Alhambra?"
    answers = [
        "No lo sé.",
        "La Alhambra está en Granada, en Andalucía.",
        "Está en España, en el sur del país.",
    ]

    def call(generations, ratings):
        try:
            return build_pair(instruction, list(generations), list(ratings)), None
        except Exception as exc:  # noqa: BLE001 - the learner's code: report, do not crash the notebook
            return None, f"{type(exc).__name__}: {exc}"

    clear, error = call(answers, [2, 5, 3])
    tie, error_tie = call(answers[:2], [3, 3])
    missing, error_missing = call(answers[:2], [4, None])
    shape_ok = isinstance(clear, dict) and not check_dpo_rows([clear])
    chosen = clear["chosen"][0]["content"] if shape_ok else None
    rejected = clear["rejected"][0]["content"] if shape_ok else None
    return report(
        "pares de preferencias",
        [
            Expectation(error is None and shape_ok, "devuelve prompt/chosen/rejected en formato de chat válido",
                        error or "un dict con 'prompt', 'chosen' y 'rejected', cada uno una lista de turnos"),
            Expectation(chosen == answers[1], "chosen es la respuesta con la nota más alta",
                        "busca el índice de la nota máxima"),
            Expectation(rejected == answers[0], "rejected es la respuesta con la nota más baja",
                        "busca el índice de la nota mínima"),
            Expectation(error_tie is None and tie is None, "con un empate devuelve None (no hay preferencia)",
                        error_tie or "si todas las notas son iguales no hay nada que aprender"),
            Expectation(error_missing is None and missing is None, "si falta una nota devuelve None",
                        error_missing or "una nota None significa que el juez no se pudo leer"),
        ],
    )  # fmt: skip
