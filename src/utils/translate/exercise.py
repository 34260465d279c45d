"""Self-check of notebook 01's exercise: protect bounding boxes from the translator.

LLaVA-1.5's training mix (``llava_v1_5_mix665k``) has answers with normalized boxes such as
``[0.12, 0.34, 0.56, 0.78]``.  The default rules protect each number of a box on its own,
so a translator that touches the brackets or commas forces the sentence to be translated
in small pieces.  A rule that protects the whole box as one span keeps the sentence whole.
The learner writes that regular expression; :func:`check_bbox_pattern` tests what it does.
"""

from __future__ import annotations

import re

from utils.core.exercises import Expectation, report
from utils.translate.segments import DEFAULT_RULES, segment_text

#: Sentences with boxes, and the boxes a correct pattern must find in each.
BOX_SENTENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "The dog [0.12, 0.34, 0.56, 0.78] is lying next to the cat [0.6, 0.2, 0.9, 0.81].",
        ("[0.12, 0.34, 0.56, 0.78]", "[0.6, 0.2, 0.9, 0.81]"),
    ),
    ("The region [0.0, 0.5, 1.0, 1.0] shows a cloudy sky.", ("[0.0, 0.5, 1.0, 1.0]",)),
    ("Is there a car at [0.25,0.4,0.5,0.75]?", ("[0.25,0.4,0.5,0.75]",)),
)
#: Text a correct pattern must leave alone.
NOT_BOXES: tuple[str, ...] = (
    "She bought [3 apples] and 2 pears.",
    "The letters [a, b, c, d] are printed on the sign.",
    "Only three numbers: [0.1, 0.2, 0.3].",
    "The price went from 0.5 to 0.75 dollars.",
)


def reference_bbox_pattern() -> str:
    """One correct answer (used as the exercise's default so the notebook runs end to end)."""
    number = r"\d+(?:\.\d+)?"
    return rf"\[{number}(?:,\s*{number}){{3}}\]"


def check_bbox_pattern(pattern: str) -> bool:
    """Check the learner's box pattern; print ✅/❌ lines with hints; return True if it passes."""
    try:
        compiled = re.compile(pattern)
        valid = not compiled.fullmatch("")
    except (re.error, TypeError):
        compiled, valid = None, False
    expectations = [
        Expectation(
            valid,
            "es una expresión regular válida que no acepta el texto vacío",
            "prueba re.compile(PATRON_CAJA) y asegúrate de exigir al menos los corchetes",
        ),
    ]
    if compiled is None or not valid:
        return report("proteger cajas [x1, y1, x2, y2]", expectations)
    found = [tuple(m.group() for m in compiled.finditer(text)) for text, _ in BOX_SENTENCES]
    expectations.append(
        Expectation(
            found == [boxes for _, boxes in BOX_SENTENCES],
            "encuentra cada caja completa, con y sin espacios tras las comas",
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
    rules = DEFAULT_RULES.with_patterns(pattern)
    text, boxes = BOX_SENTENCES[0]
    protected = [span for segment in segment_text(text, rules).segments for span in segment.protected]
    expectations.append(
        Expectation(
            all(box in protected for box in boxes),
            "con ProtectionRules.with_patterns cada caja queda protegida como una sola pieza",
            "el segmentador debe ver la caja entera como un único tramo protegido",
        )
    )
    return report("proteger cajas [x1, y1, x2, y2]", expectations)
