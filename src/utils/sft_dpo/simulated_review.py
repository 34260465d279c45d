"""A stand-in for the human reviewer, for the mini profile and CI (notebook 02).

In the full profile people review the records in Argilla's web UI.  Where nobody is at
the keyboard (mini, CI) the notebook submits reviews through the SDK instead, decided by
these rules — a heuristic that checks *grounding*, a different signal from the LLM judge:

* the question shares almost no content words with the article → **discard**
  (it is not about the article);
* the answer shares few content words with the article → it does not use the context:
  **correct** it with the article sentence closest in meaning to the question
  (multilingual embeddings) and rate it low;
* otherwise **accept** it (the judge's rating, ``usa_contexto = sí``).

For DPO records the candidates are ranked by how much they use the article; a record whose
candidates cannot be told apart is discarded.  None of this is a person's judgement, and
the notebook says so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from utils.sft_dpo.text_embeddings import closest_sentence

_WORD = re.compile(r"[a-záéíóúüñ]{4,}", re.IGNORECASE)
#: Below this share of content words found in the article, a question is off-topic.
QUESTION_MIN_OVERLAP = 0.2
#: Below this share, an answer does not use the article.
ANSWER_MIN_OVERLAP = 0.5
#: Candidates whose overlaps differ less than this cannot be ranked.
MIN_RANKING_GAP = 0.05


@dataclass(frozen=True)
class Review:
    """A simulated reviewer's response: status, values per question, and why."""

    status: Literal["submitted", "discarded"]
    values: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def overlap(text: str, context: str) -> float:
    """Share of the content words (4+ letters) of ``text`` that also appear in ``context``."""
    words = {w.casefold() for w in _WORD.findall(text)}
    if not words:
        return 0.0
    known = {w.casefold() for w in _WORD.findall(context)}
    return len(words & known) / len(words)


def review_sft(instruction: str, response: str, context: str, judge_rating: int | None) -> Review:
    """Decide the SFT questions (``calidad``, ``usa_contexto``, ``respuesta_corregida``)."""
    if overlap(instruction, context) < QUESTION_MIN_OVERLAP:
        return Review("discarded", note="la pregunta no trata del artículo")
    if overlap(response, context) < ANSWER_MIN_OVERLAP:
        sentence, _ = closest_sentence(instruction, context)
        return Review(
            "submitted",
            {"calidad": 2, "usa_contexto": "no", "respuesta_corregida": sentence},
            note="no usa el artículo: corregida con su frase más cercana a la pregunta",
        )
    rating = min(5, max(1, judge_rating)) if judge_rating else 3
    return Review("submitted", {"calidad": rating, "usa_contexto": "si"}, note="aceptada")


def review_dpo(instruction: str, candidates: Sequence[str], context: str) -> Review:
    """Decide the DPO questions: ``ranking`` (best first) and maybe ``respuesta_corregida``."""
    if overlap(instruction, context) < QUESTION_MIN_OVERLAP:
        return Review("discarded", note="la pregunta no trata del artículo")
    scores = [overlap(c, context) for c in candidates]
    if max(scores) - min(scores) < MIN_RANKING_GAP:
        return Review("discarded", note="las respuestas no se distinguen")
    order = sorted(range(len(candidates)), key=lambda i: -scores[i])
    values: dict[str, Any] = {"ranking": [f"respuesta_{i + 1}" for i in order]}
    note = "ordenadas por uso del artículo"
    if scores[order[0]] < ANSWER_MIN_OVERLAP:
        values["respuesta_corregida"] = closest_sentence(instruction, context)[0]
        note += "; la mejor no usa el artículo: corregida"
    return Review("submitted", values, note=note)
