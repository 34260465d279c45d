"""Checks of notebook 02's exercises: they run the learner's code and say, in Spanish, what is missing.

* Exercise 1 (guided), section 4: ``preference_pair(instruction, generations, ratings)``.
* Exercise 2 (open), section 5: ``KeepGrounded``, a distilabel ``@step`` that keeps the SFT
  rows whose response is useful and grounded in the article.

A check never raises: the learner's exceptions become a failed line with their type.
"""

from __future__ import annotations

import logging
from typing import Any

from utils.core.exercises import Expectation, attempt, report
from utils.sft_dpo.dataset_checks import check_dpo_rows

_INSTRUCTION = "¿En qué ciudad está la Alhambra?"
_ANSWERS = ["No lo sé.", "La Alhambra está en Granada, en Andalucía.", "Está en España, en el sur del país."]


def _call(function, *args) -> tuple[Any, str | None]:
    """``function(*args)`` and the error it raised, as text (``None`` if it did not)."""
    try:
        return function(*args), None
    except NotImplementedError:
        return None, "aún es el esqueleto: cambia `raise NotImplementedError` por tu código"
    except Exception as exc:  # noqa: BLE001 - the learner's code may fail in any way
        return None, f"lanzó {type(exc).__name__}: {exc}"


def check_preference_pair(preference_pair) -> bool:
    """Exercise 1: best against worst in TRL's chat format; ``None`` on ties, missing ratings, same text."""
    clear, failed = attempt(preference_pair, _INSTRUCTION, list(_ANSWERS), [2, 5, 3])
    if failed is not None:
        return report("pares de preferencias", [failed])
    shape_ok = isinstance(clear, dict) and not check_dpo_rows([clear])
    chosen = clear["chosen"][0]["content"] if shape_ok else None
    rejected = clear["rejected"][0]["content"] if shape_ok else None
    prompt_ok = shape_ok and clear["prompt"] == [{"role": "user", "content": _INSTRUCTION}]
    tie, error_tie = _call(preference_pair, _INSTRUCTION, _ANSWERS[:2], [3, 3])
    missing, error_missing = _call(preference_pair, _INSTRUCTION, _ANSWERS[:2], [4, None])
    same, error_same = _call(preference_pair, _INSTRUCTION, ["En Granada.", "En Granada."], [5, 1])
    return report(
        "pares de preferencias",
        [
            Expectation(
                shape_ok,
                "devuelve prompt/chosen/rejected en formato de chat válido",
                "un dict con 'prompt', 'chosen' y 'rejected', cada uno una lista de turnos {'role', 'content'}",
            ),
            Expectation(
                prompt_ok, "prompt es el turno del usuario con la instrucción", "role 'user', content = instruction"
            ),
            Expectation(
                chosen == _ANSWERS[1],
                "chosen es la respuesta con la nota más alta",
                "busca el índice de la nota máxima",
            ),
            Expectation(
                rejected == _ANSWERS[0],
                "rejected es la respuesta con la nota más baja",
                "busca el índice de la nota mínima",
            ),
            Expectation(
                error_tie is None and tie is None,
                "con un empate devuelve None (no hay preferencia)",
                error_tie or "si todas las notas son iguales no hay nada que aprender",
            ),
            Expectation(
                error_missing is None and missing is None,
                "si falta una nota devuelve None",
                error_missing or "una nota None significa que el juez no se pudo leer",
            ),
            Expectation(
                error_same is None and same is None,
                "si la mejor y la peor son el mismo texto devuelve None",
                error_same or "un par con chosen igual a rejected no enseña nada (compara los textos con .strip())",
            ),
        ],
    )


#: Test rows of exercise 2: (row, should it pass?, what it is).
_CONTEXT = (
    "La Alhambra es un conjunto de palacios y fortalezas de Granada, en Andalucía. Fue residencia de los "
    "sultanes nazaríes en los siglos XIII y XIV. En 1984 la Unesco la declaró Patrimonio de la Humanidad."
)
_QUESTION = "¿Quién vivió en la Alhambra de Granada?"
_STEP_ROWS = [
    ({"instruction": _QUESTION, "response": "En la Alhambra vivieron los sultanes nazaríes de Granada.",
      "content": _CONTEXT, "id": "fundamentada"}, True, "una respuesta fundamentada en el artículo"),
    ({"instruction": "¿Qué declaró la Unesco sobre la Alhambra?",
      "response": "La Unesco declaró la Alhambra Patrimonio de la Humanidad en 1984.",
      "content": _CONTEXT, "id": "fundamentada-2"}, True, "otra respuesta fundamentada"),
    ({"instruction": _QUESTION, "response": "", "content": _CONTEXT, "id": "vacia"}, False, "una respuesta vacía"),
    ({"instruction": _QUESTION,
      "response": "Los pingüinos emperador cruzan cada invierno el hielo antártico buscando colonias lejanas.",
      "content": _CONTEXT, "id": "sin-relacion"}, False, "una respuesta sin relación con el artículo"),
    ({"instruction": _QUESTION, "response": _QUESTION, "content": _CONTEXT, "id": "eco"}, False,
     "una respuesta que repite la pregunta"),
]  # fmt: skip


def check_grounded_step(step_class) -> bool:
    """Exercise 2: the ``@step`` keeps the grounded rows, drops the others, and leaves rows unchanged."""
    title = "paso KeepGrounded"
    # Outside a Pipeline distilabel warns (in English) that the step has none: expected here.
    logging.getLogger("distilabel.step.comprobacion").setLevel(logging.ERROR)
    try:
        instance = step_class(name="comprobacion")
    except Exception as exc:  # noqa: BLE001 - the learner's class may fail in any way
        return report(title, [Expectation(False, "el paso se crea", f"lanzó {type(exc).__name__}: {exc}")])
    rows = [dict(row) for row, _, _ in _STEP_ROWS]

    def run():
        return list(next(instance.process([dict(r) for r in rows])))

    run.__name__ = getattr(step_class, "__name__", "KeepGrounded")
    kept, failed = attempt(run)
    if failed is not None:
        return report(title, [failed])
    kept_ids = [row.get("id") if isinstance(row, dict) else None for row in kept]
    expectations = [
        Expectation(
            (row["id"] in kept_ids) == should_pass,
            f"{'deja pasar' if should_pass else 'descarta'} {what}",
            f"revisa tu regla con la fila «{row['response'][:60] or '(vacía)'}»",
        )
        for row, should_pass, what in _STEP_ROWS
    ]
    unchanged = all(isinstance(row, dict) and row in rows for row in kept)
    expectations.append(
        Expectation(
            unchanged, "las filas que pasan siguen igual", "haz `yield` de las filas tal cual, sin quitarles columnas"
        )
    )
    return report(title, expectations)
