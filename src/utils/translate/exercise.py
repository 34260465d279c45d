"""Checks of notebook 01's exercises (what the learner's answer does, not how it is written).

* Ejercicio 1 (guiado): ``chunk_bounds(n_rows, size)`` — the ``(start, end)`` chunks that cover
  every row once; the classic ``range(len(rows) // size)`` loses the last, incomplete chunk.
* Ejercicio 2 (abierto): a regular expression that protects a whole coordinate box
  ``[0.12, 0.34, 0.56, 0.78]`` (LLaVA-1.5's ``llava_v1_5_mix665k`` answers carry them) as one span,
  so the sentence around it is translated whole.

Each ``check_*`` prints ✅/❌ lines with hints in Spanish and returns whether everything passed;
it never raises, and on the stub (``NotImplementedError`` or ``None``) it says what is missing.
"""

from __future__ import annotations

import re

from utils.core.exercises import Expectation, attempt, report
from utils.translate.segments import DEFAULT_RULES, segment_text

# --------------------------------------------------------------------------- exercise 1: chunks

#: (rows, chunk size) the chunking must handle: a remainder, an exact multiple, fewer rows than
#: one chunk, no rows, chunks of one row.
CHUNK_CASES: tuple[tuple[int, int], ...] = ((25, 10), (20, 10), (3, 10), (0, 10), (7, 1), (501, 500))


def _as_pairs(value: object) -> list[tuple[int, int]] | None:
    """``value`` as a list of ``(start, end)`` integer pairs, or None if it is not one."""
    try:
        pairs = [tuple(pair) for pair in value]  # type: ignore[union-attr]
    except TypeError:
        return None
    if not all(len(p) == 2 and all(isinstance(x, int) for x in p) for p in pairs):
        return None
    return pairs  # type: ignore[return-value]


def check_chunk_bounds(chunk_bounds) -> bool:
    """Check ``chunk_bounds(n_rows, size)``: every row exactly once, in order, in full chunks."""
    title = "bloques que no pierden filas"
    results: dict[tuple[int, int], list[tuple[int, int]] | None] = {}
    for n_rows, size in CHUNK_CASES:
        value, failed = attempt(chunk_bounds, n_rows, size)
        if failed is not None:
            return report(title, [failed])
        pairs = _as_pairs(value)
        if pairs is None:
            return report(
                title,
                [
                    Expectation(
                        False,
                        "devuelve una lista de pares (inicio, fin)",
                        f"chunk_bounds({n_rows}, {size}) devolvió {value!r}",
                    )
                ],
            )
        results[(n_rows, size)] = pairs

    def covered(pairs):
        return [i for start, end in pairs for i in range(start, end)]

    lost = [(n, s) for (n, s), pairs in results.items() if not set(range(n)) <= set(covered(pairs))]
    extra = [(n, s) for (n, s), pairs in results.items() if covered(pairs) != list(range(n)) and (n, s) not in lost]
    bad_size = [
        (n, s)
        for (n, s), pairs in results.items()
        if any(not 0 < end - start <= s for start, end in pairs) or any(end - start != s for start, end in pairs[:-1])
    ]
    expectations = [
        Expectation(
            not lost,
            "no se pierde ninguna fila (tampoco las del último bloque incompleto)",
            f"con {lost[0][0]} filas y bloques de {lost[0][1]} faltan filas: ¿redondeas hacia abajo?" if lost else "",
        ),
        Expectation(
            not extra,
            "cada fila aparece una sola vez, en orden, y ningún bloque se sale del final",
            f"con {extra[0][0]} filas y bloques de {extra[0][1]} hay filas repetidas, desordenadas o inexistentes"
            if extra
            else "",
        ),
        Expectation(
            not bad_size,
            "todos los bloques tienen `size` filas salvo el último, y ninguno está vacío",
            f"revisa chunk_bounds({bad_size[0][0]}, {bad_size[0][1]}) = {results[bad_size[0]]}" if bad_size else "",
        ),
    ]
    return report(title, expectations)


# --------------------------------------------------------------------------- exercise 2: boxes

#: Sentences with boxes, and the boxes a correct pattern must find in each.
BOX_SENTENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "The dog [0.12, 0.34, 0.56, 0.78] is lying next to the cat [0.6, 0.2, 0.9, 0.81].",
        ("[0.12, 0.34, 0.56, 0.78]", "[0.6, 0.2, 0.9, 0.81]"),
    ),
    ("The region [0, 0.5, 1, 1] shows a cloudy sky.", ("[0, 0.5, 1, 1]",)),
    ("Is there a car at [0.25,0.4,0.5,0.75]?", ("[0.25,0.4,0.5,0.75]",)),
)
#: Text a correct pattern must leave alone.
NOT_BOXES: tuple[str, ...] = (
    "She bought [3 apples] and 2 pears.",
    "The letters [a, b, c, d] are printed on the sign.",
    "Only three numbers: [0.1, 0.2, 0.3].",
    "The price went from 0.5 to 0.75 dollars.",
)


def check_bbox_pattern(pattern: str | None) -> bool:
    """Check the learner's box pattern; print ✅/❌ lines with hints; return True if it passes."""
    title = "proteger cajas [x1, y1, x2, y2]"
    if pattern is None:
        return report(title, [Expectation(False, "`BOX_PATTERN` está escrito", "aún es None: escribe tu patrón")])
    try:
        compiled = re.compile(pattern)
        valid = not compiled.fullmatch("")
    except (re.error, TypeError):
        compiled, valid = None, False
    expectations = [
        Expectation(
            valid,
            "es una expresión regular válida que no acepta el texto vacío",
            "prueba re.compile(BOX_PATTERN) y asegúrate de exigir al menos los corchetes",
        ),
    ]
    if compiled is None or not valid:
        return report(title, expectations)
    found = [tuple(m.group() for m in compiled.finditer(text)) for text, _ in BOX_SENTENCES]
    expectations.append(
        Expectation(
            found == [boxes for _, boxes in BOX_SENTENCES],
            "encuentra cada caja completa, con y sin espacios tras las comas, con enteros o decimales",
            "cada caja son cuatro números (enteros o con decimales) separados por comas, entre [ y ]",
        )
    )
    false_hits = [text for text in NOT_BOXES if compiled.search(text)]
    expectations.append(
        Expectation(
            not false_hits,
            "no confunde otros corchetes ni números sueltos con una caja",
            f"tu patrón también reconoce algo en: {false_hits[0]!r}" if false_hits else "",
        )
    )
    text, boxes = BOX_SENTENCES[0]
    protected = [
        span for s in segment_text(text, DEFAULT_RULES.with_patterns(pattern)).segments for span in s.protected
    ]
    expectations.append(
        Expectation(
            all(box in protected for box in boxes),
            "con DEFAULT_RULES.with_patterns cada caja queda protegida como una sola pieza",
            "el segmentador debe ver la caja entera como un único tramo protegido",
        )
    )
    return report(title, expectations)
