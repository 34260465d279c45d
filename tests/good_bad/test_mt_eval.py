"""Translation scores on known strings (sacrebleu chrF/BLEU), tables and plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest

from utils.good_bad.mt_eval import (
    EvaluationError,
    MTScores,
    comparison_table,
    plot_scores,
    score_translations,
    sentence_chrf,
    share_matching,
    wins,
)

REFS = ["El gato está durmiendo en el sofá.", "¿Puedes ayudarme a encontrar un hotel barato?"]


def test_identical_translations_score_100():
    scores = score_translations(REFS, REFS)
    assert scores == MTScores(chrf=100.0, bleu=100.0, n=2)


def test_unrelated_translations_score_near_zero():
    scores = score_translations(["zzz qqq", "xxxx yyyy"], REFS)
    assert scores.chrf < 5 and scores.bleu == 0.0


def test_good_translation_beats_the_bad_one():
    good = ["El gato duerme en el sofá.", "¿Puedes ayudarme a buscar un hotel barato?"]
    bad = ["Gato es durmiendo en sofá.", "¿Puedes ayudar yo encontrar barato hotel?"]
    good_scores, bad_scores = score_translations(good, REFS), score_translations(bad, REFS)
    assert good_scores.chrf > bad_scores.chrf and good_scores.bleu > bad_scores.bleu
    # chrF gives partial credit for a wrong ending, BLEU does not.
    assert sentence_chrf(["El gato está durmiendo en la sofá."], REFS[:1])[0] > 80


def test_known_sacrebleu_values():
    import sacrebleu

    hyps = ["El gato duerme en el sofá.", "¿Puedes ayudarme?"]
    scores = score_translations(hyps, REFS)
    assert scores.chrf == round(sacrebleu.corpus_chrf(hyps, [REFS]).score, 2)
    assert scores.bleu == round(sacrebleu.corpus_bleu(hyps, [REFS]).score, 2)
    assert 0 < scores.bleu < scores.chrf < 100


def test_misaligned_inputs_are_clear_errors():
    with pytest.raises(EvaluationError, match="1 translations for 2 references"):
        score_translations(["hola"], REFS)
    with pytest.raises(EvaluationError, match="empty"):
        score_translations([], [])
    with pytest.raises(EvaluationError, match="must be a string"):
        score_translations([None, "x"], REFS)  # type: ignore[list-item]
    with pytest.raises(EvaluationError):
        wins([1.0], [1.0, 2.0])


def test_table_wins_and_plot():
    outputs = {"buenos": ["El gato duerme en el sofá.", "Hola"], "malos": ["Gato es durmiendo.", "Hola"]}
    table = comparison_table(["The cat…", "Can you…"], REFS, outputs)
    assert list(table.columns) == ["inglés", "referencia", "buenos", "chrF buenos", "malos", "chrF malos"]
    assert table["chrF buenos"][0] > table["chrF malos"][0]
    assert wins(table["chrF buenos"].tolist(), table["chrF malos"].tolist()) == (1, 1, 0)
    ax = plot_scores({"base": MTScores(10, 1, 2), "buenos": MTScores(40, 12, 2)})
    assert len(ax.patches) == 4 and "2 frases" in ax.get_title()


def test_share_matching_counts_texts_with_the_pattern():
    articles = r"\b(el|la|los|las|un|una)\b"
    assert share_matching(["El gato duerme.", "Gato duerme.", "Veo una casa.", "Casa blanco."], articles) == 0.5
    assert share_matching(["ayudar yo encontrar"], "ayudar yo") == 1.0
    with pytest.raises(EvaluationError):
        share_matching([], articles)
