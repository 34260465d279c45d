"""Offline multilingual embeddings (USE v3): shape, normalization, nearest sentence."""

from __future__ import annotations

import numpy as np

from utils.sft_dpo.text_embeddings import DIMENSIONS, closest_sentence, embed, split_sentences


def test_embeddings_are_unit_vectors_and_cross_lingual():
    vectors = embed(["El gato duerme en el sofá.", "The cat sleeps on the sofa.", "La bolsa cayó un tres por ciento."])
    assert vectors.shape == (3, DIMENSIONS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
    assert embed([]).shape == (0, DIMENSIONS)


def test_closest_sentence_finds_the_answer():
    text = "El Teide está en Tenerife. Mide 3715 metros.\nEs un volcán activo, aunque en reposo."
    assert split_sentences(text) == [
        "El Teide está en Tenerife.",
        "Mide 3715 metros.",
        "Es un volcán activo, aunque en reposo.",
    ]
    sentence, score = closest_sentence("¿Cuántos metros mide?", text)
    assert sentence == "Mide 3715 metros." and 0 < score <= 1
    assert closest_sentence("¿Está activo el volcán?", text)[0].startswith("Es un volcán activo")
    assert closest_sentence("¿Algo?", "") == ("", 0.0)
