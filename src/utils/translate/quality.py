"""Quality checks of translated LLaVA rows, turn by turn.

They look only at the English and Spanish text of each turn, so they work on the output
of this engine and on any other translation of the same format:

============== ===============================================================
flag           meaning
============== ===============================================================
not_spanish    the language detector (fastText lid.176 lite) says it is not Spanish
length_ratio   Spanish/English length outside ``ratio_bounds`` (truncated or padded output)
untranslated   an English sentence of three or more words appears unchanged
image_tag      ``<image>`` count or position differs from the English turn
structure      line breaks, list markers or code blocks differ
numbers        a number of the English turn is missing in the Spanish one
============== ===============================================================
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from utils.core.language import detect_language
from utils.translate.segments import CODE_BLOCK, IMAGE_TOKEN, LINE_PREFIX, NUMBER_PATTERN, segment_text

FLAGS = ("not_spanish", "length_ratio", "untranslated", "image_tag", "structure", "numbers")
_NUMBER = re.compile(NUMBER_PATTERN)


@dataclass(frozen=True)
class QAConfig:
    """Thresholds of the checks."""

    lang: str = "es"
    min_lang_score: float = 0.5  # below this, the detector's "es" does not count
    ratio_bounds: tuple[float, float] = (0.6, 2.2)  # Spanish is usually 1.1–1.3× English
    min_chars_for_ratio: int = 20  # shorter turns are too noisy for a ratio
    untranslated_min_words: int = 3


@dataclass(frozen=True)
class TurnCheck:
    """The checks of one turn of one row."""

    row_index: int
    id: str
    turn: int
    role: str
    lang: str
    lang_score: float
    length_ratio: float | None
    flags: tuple[str, ...]


def _image_layout(text: str) -> tuple[bool, ...]:
    """Where ``<image>`` sits: for each gap around the tags, whether it holds text."""
    return tuple(bool(part.strip()) for part in text.split(IMAGE_TOKEN))


def _structure(text: str) -> tuple[tuple[str, ...], int, tuple[str, ...]]:
    """Code blocks, number of line breaks and list markers of a value."""
    blocks = tuple(CODE_BLOCK.findall(text))
    prose = CODE_BLOCK.sub("", text)
    lines = prose.split("\n")
    markers = tuple(m.group().strip() for line in lines if (m := LINE_PREFIX.match(line)) and m.group().strip())
    return blocks, text.count("\n"), markers


def check_turn(en: str, es: str, config: QAConfig = QAConfig()) -> tuple[list[str], str, float, float | None]:
    """Flags, detected language, its score and the length ratio of one translated turn."""
    flags: list[str] = []
    guess = detect_language(es)
    if guess.lang != "und" and (guess.lang != config.lang or guess.score < config.min_lang_score):
        flags.append("not_spanish")
    prose_en = CODE_BLOCK.sub("", en).replace(IMAGE_TOKEN, "").strip()
    prose_es = CODE_BLOCK.sub("", es).replace(IMAGE_TOKEN, "").strip()
    ratio = None
    if len(prose_en) >= config.min_chars_for_ratio:
        ratio = len(prose_es) / len(prose_en)
        low, high = config.ratio_bounds
        if not low <= ratio <= high:
            flags.append("length_ratio")
    for segment in segment_text(en).segments:
        if len(segment.text.split()) >= config.untranslated_min_words and segment.text in es:
            flags.append("untranslated")
            break
    if en.count(IMAGE_TOKEN) != es.count(IMAGE_TOKEN) or _image_layout(en) != _image_layout(es):
        flags.append("image_tag")
    if _structure(en) != _structure(es):
        flags.append("structure")
    if Counter(_NUMBER.findall(prose_en)) - Counter(_NUMBER.findall(prose_es)):
        flags.append("numbers")
    return flags, guess.lang, guess.score, ratio


def check_rows(rows: Iterable[dict[str, Any]], config: QAConfig = QAConfig()) -> list[TurnCheck]:
    """Check every turn of translated rows (``conversations`` vs ``conversations_en``)."""
    checks: list[TurnCheck] = []
    for row in rows:
        for number, (es, en) in enumerate(zip(row["conversations"], row["conversations_en"], strict=True)):
            flags, lang, score, ratio = check_turn(en["value"], es["value"], config)
            checks.append(
                TurnCheck(
                    row_index=int(row["row_index"]),
                    id=str(row["id"]),
                    turn=number,
                    role=en["from"],
                    lang=lang,
                    lang_score=round(score, 3),
                    length_ratio=None if ratio is None else round(ratio, 3),
                    flags=tuple(flags),
                )
            )
    return checks


def summarize(checks: Sequence[TurnCheck]) -> dict[str, Any]:
    """Flag counts (turns and rows) and the flagged rows, for the report."""
    by_row: dict[int, dict[str, Any]] = {}
    for check in checks:
        if check.flags:
            entry = by_row.setdefault(check.row_index, {"row_index": check.row_index, "id": check.id, "flags": {}})
            for flag in check.flags:
                entry["flags"].setdefault(flag, []).append(check.turn)
    turn_counts = Counter(flag for check in checks for flag in check.flags)
    row_counts = Counter(flag for entry in by_row.values() for flag in entry["flags"])
    return {
        "turns_checked": len(checks),
        "turns_flagged": sum(1 for c in checks if c.flags),
        "flag_counts_turns": {flag: turn_counts.get(flag, 0) for flag in FLAGS},
        "flag_counts_rows": {flag: row_counts.get(flag, 0) for flag in FLAGS},
        "flagged_rows": [by_row[k] for k in sorted(by_row)],
    }


def merge_summaries(summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-chunk summaries into one."""
    total: dict[str, Any] = {
        "turns_checked": 0,
        "turns_flagged": 0,
        "flag_counts_turns": dict.fromkeys(FLAGS, 0),
        "flag_counts_rows": dict.fromkeys(FLAGS, 0),
        "flagged_rows": [],
    }
    for summary in summaries:
        total["turns_checked"] += summary["turns_checked"]
        total["turns_flagged"] += summary["turns_flagged"]
        for key in ("flag_counts_turns", "flag_counts_rows"):
            for flag, count in summary[key].items():
                total[key][flag] = total[key].get(flag, 0) + count
        total["flagged_rows"] += summary["flagged_rows"]
    total["flagged_rows"].sort(key=lambda entry: entry["row_index"])
    return total


def checks_frame(checks: Sequence[TurnCheck]):
    """A pandas DataFrame with one row per turn and one boolean column per flag."""
    import pandas as pd

    frame = pd.DataFrame([asdict(c) for c in checks])
    for flag in FLAGS:
        frame[flag] = frame["flags"].apply(lambda flags, f=flag: f in flags)
    return frame.drop(columns=["flags"])


def plot_checks(checks: Sequence[TurnCheck], title: str = "", config: QAConfig = QAConfig()):
    """Two panels: turns per flag, and the histogram of length ratios with the bounds."""
    import matplotlib.pyplot as plt

    counts = Counter(flag for check in checks for flag in check.flags)
    ratios = [c.length_ratio for c in checks if c.length_ratio is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.barh(list(FLAGS), [counts.get(f, 0) for f in FLAGS], color="#c0504d")
    left.invert_yaxis()
    left.set_xlabel(f"turnos marcados (de {len(checks)})")
    left.set_title("Avisos del control de calidad")
    right.hist(ratios, bins=20, color="#4f81bd")
    for bound in config.ratio_bounds:
        right.axvline(bound, color="#c0504d", linestyle="--")
    right.set_xlabel("longitud español / inglés")
    right.set_ylabel("turnos")
    right.set_title("Proporción de longitudes")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
