"""Rates for ``benchmarks/translation_throughput.py``: the naive loop against the engine.

Notebook 01 (section 7) writes the same comparison in its cell, on 8 rows; the benchmark
measures it on all the mini data: one ``generate`` per sentence (what ``pipeline("translation")``
did per call) against :func:`utils.translate.run_translation`, with the same model, CPU threads
and generated tokens per sentence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utils.translate.backends import Seq2SeqBackend


def row_sentences(rows: Sequence[Any]) -> list[str]:
    """The sentences the engine would send for ``rows`` (in order, repeats included)."""
    from utils.translate.records import validate_row
    from utils.translate.segments import segment_text

    sentences: list[str] = []
    for index, obj in enumerate(rows):
        row = validate_row(obj, index)
        if isinstance(row, str):  # malformed: the engine quarantines it
            continue
        for turn in row.turns:
            sentences += [s.text for s in segment_text(turn.value).segments]
    return sentences


def naive_rate(backend: Seq2SeqBackend, sentences: Sequence[str]) -> float:
    """Sentences per second of one tokenizer call + one ``generate`` + one decode per sentence."""
    import torch

    tokenizer, model, kwargs = backend.tokenizer, backend.model, backend.generate_kwargs
    with torch.inference_mode():  # warm-up, untimed
        model.generate(**tokenizer(["Warm up."], return_tensors="pt").to(backend.device), **kwargs)
    began = time.perf_counter()
    with torch.inference_mode():
        for sentence in sentences:
            inputs = tokenizer([sentence], return_tensors="pt", truncation=True).to(backend.device)
            tokenizer.batch_decode(model.generate(**inputs, **kwargs), skip_special_tokens=True)
    return len(sentences) / (time.perf_counter() - began)


def engine_rate(backend: Any, input_path: Path | str, out_dir: Path | str) -> tuple[float, dict[str, Any]]:
    """Sentences per second of :func:`~utils.translate.run_translation` into a fresh ``out_dir``."""
    from utils.translate.engine import run_translation

    backend.translate(["Warm up."])  # untimed, like the other sides
    began = time.perf_counter()
    report = run_translation(input_path, out_dir, backend, chunk_size=10_000, progress=False)
    return report["segments"] / (time.perf_counter() - began), report
