"""Machine-translation scores with sacrebleu (chrF and BLEU), tables and plots.

Everything runs offline: the metrics come from the ``sacrebleu`` package itself, not from
a metric script downloaded from the Hub.

* chrF (character n-gram F-score) rewards partially right words — useful for Spanish,
  where a wrong ending (``pequeño``/``pequeña``) is only a small error.
* BLEU (word n-gram precision with a brevity penalty) is the classic MT metric; on a few
  dozen short sentences it is noisy, so read it together with chrF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from utils.core.errors import CourseError


@dataclass(frozen=True)
class MTScores:
    """Corpus-level scores of one system on one test set (0–100, higher is better)."""

    chrf: float
    bleu: float
    n: int  # sentences scored


class EvaluationError(CourseError, ValueError):
    """Hypotheses and references that cannot be scored together."""


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise EvaluationError(
            f"{len(hypotheses)} translations for {len(references)} references: translate every "
            "test sentence (one output per reference, in the same order)."
        )
    if not references:
        raise EvaluationError("Nothing to score: the test set is empty.")
    if any(not isinstance(h, str) for h in hypotheses):
        raise EvaluationError("Every translation must be a string (use '' for a missing one).")


def score_translations(hypotheses: Sequence[str], references: Sequence[str]) -> MTScores:
    """Corpus chrF and BLEU of ``hypotheses`` against one reference each.

    Raises:
        EvaluationError: when the two lists do not line up.
    """
    import sacrebleu

    _check(hypotheses, references)
    refs = [list(references)]
    chrf = sacrebleu.corpus_chrf(list(hypotheses), refs).score
    bleu = sacrebleu.corpus_bleu(list(hypotheses), refs).score
    return MTScores(chrf=round(chrf, 2), bleu=round(bleu, 2), n=len(references))


def sentence_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """chrF of each sentence (for side-by-side tables and win counts)."""
    import sacrebleu

    _check(hypotheses, references)
    return [round(sacrebleu.sentence_chrf(h, [r]).score, 1) for h, r in zip(hypotheses, references)]


def comparison_table(sources: Sequence[str], references: Sequence[str], outputs: Mapping[str, Sequence[str]]) -> Any:
    """A ``pandas.DataFrame``: source, reference, then each system's output and its chrF."""
    import pandas as pd

    table: dict[str, Sequence[Any]] = {"inglés": list(sources), "referencia": list(references)}
    for name, hyps in outputs.items():
        table[name] = list(hyps)
        table[f"chrF {name}"] = sentence_chrf(hyps, references)
    return pd.DataFrame(table)


def wins(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, int]:
    """(sentences where a > b, ties, sentences where b > a)."""
    if len(a) != len(b):
        raise EvaluationError(f"cannot compare {len(a)} scores with {len(b)}")
    better = sum(x > y for x, y in zip(a, b))
    worse = sum(x < y for x, y in zip(a, b))
    return better, len(a) - better - worse, worse


def share_matching(texts: Sequence[str], pattern: str) -> float:
    """Fraction of ``texts`` in which the regular expression ``pattern`` occurs (case-insensitive).

    A quick, measurable symptom of a systematic error: e.g. how many outputs contain an
    article at all, when the bad training data drop them.
    """
    import re

    if not texts:
        raise EvaluationError("no texts to count")
    regex = re.compile(pattern, re.IGNORECASE)
    return sum(bool(regex.search(t)) for t in texts) / len(texts)


def plot_scores(scores: Mapping[str, MTScores], *, title: str = "", ax: Any = None) -> Any:
    """Grouped bar chart of chrF and BLEU per system; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    names = list(scores)
    width = 0.38
    xs = range(len(names))
    for offset, metric, label, color in (
        (-width / 2, "chrf", "chrF", "#1f77b4"),
        (width / 2, "bleu", "BLEU", "#ff7f0e"),
    ):
        values = [getattr(scores[n], metric) for n in names]
        bars = ax.bar([x + offset for x in xs], values, width, label=label, color=color)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("puntuación (0–100)")
    ax.set_title(title or f"Test reservado ({next(iter(scores.values())).n} frases)")
    ax.legend()
    return ax


def check_error_detector(detector: Any, good: Sequence[Any], bad: Sequence[Any]) -> bool:
    """Self-check for exercise 2 of notebook 03 (open): a rule that spots a systematic error.

    ``detector(translation) -> bool`` runs over the training targets of both sets (pairs with
    a ``target``).  It must flag at least a quarter of the bad translations, at most a fifth of
    the good ones, and three times more bad than good: a symptom of the bad data, not of
    Spanish in general.  Prints the shares and what is missing, in Spanish; never raises.
    """
    from utils.core.exercises import Expectation, attempt, report

    title = "detector de errores"
    _, failed = attempt(detector, bad[0].target)
    if failed:
        return report(title, [failed])
    try:
        flags = {name: [detector(p.target) for p in pairs] for name, pairs in (("buenos", good), ("malos", bad))}
    except Exception as exc:  # noqa: BLE001 - the learner's code may fail in any way
        return report(title, [Expectation(False, "la función se ejecuta en todas las frases", f"lanzó {exc!r}")])
    booleans = all(isinstance(f, bool) for values in flags.values() for f in values)
    share = {name: sum(map(bool, values)) / len(values) for name, values in flags.items()}
    print(f"Marca el {share['malos']:.0%} de las traducciones malas y el {share['buenos']:.0%} de las buenas.")
    return report(
        title,
        [
            Expectation(
                booleans,
                "devuelve True o False",
                "convierte el resultado en bool, p. ej. `re.search(...) is not None`",
            ),
            Expectation(
                share["malos"] >= 0.25,
                "marca al menos una de cada cuatro traducciones malas",
                "elige un error más frecuente en los datos malos, o amplía la regla a sus variantes",
            ),
            Expectation(
                share["buenos"] <= 0.20,
                "marca como mucho una de cada cinco traducciones buenas",
                "la regla también salta en español correcto: hazla más específica",
            ),
            Expectation(
                share["malos"] >= 3 * share["buenos"],
                "es al menos tres veces más frecuente en las malas que en las buenas",
                "un síntoma de los datos malos tiene que separarlos de los buenos",
            ),
        ],
    )
