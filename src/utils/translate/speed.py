"""Measure, on a small sample, why bulk jobs use an inference engine (notebook 01, section 7).

:func:`compare_inference` translates the same rows four ways with the same MT model, the
same CPU threads and the same number of generated tokens per sentence, and returns a table
(sentences per second and the ratio to the naive loop):

1. **naive** — one tokenizer call + one ``generate`` + one decode per sentence, in order
   (what ``pipeline("translation")`` did per call);
2. **batched** — the same sentences in padded batches of ``batch_size`` (no cache, no sorting);
3. **engine** — :func:`utils.translate.run_translation` with the transformers backend
   (distinct sentences once, length-sorted batches, the fast greedy loop, protection, QA,
   atomic writes);
4. **engine + CTranslate2** — the same run with :class:`~utils.translate.ct2_backend.CTranslate2Backend`
   (the model converted once to int8 on CPU; the conversion is timed apart).

The benchmark ``benchmarks/translation_throughput.py`` does the same on all the mini data.
"""

from __future__ import annotations

import json
import tempfile
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


def batched_rate(backend: Any, sentences: Sequence[str]) -> float:
    """Sentences per second of ``backend.translate`` on batches of ``backend.batch_size``, in order."""
    backend.translate(["Warm up."])
    began = time.perf_counter()
    for start in range(0, len(sentences), backend.batch_size):
        backend.translate(sentences[start : start + backend.batch_size])
    return len(sentences) / (time.perf_counter() - began)


def engine_rate(backend: Any, input_path: Path | str, out_dir: Path | str) -> tuple[float, dict[str, Any]]:
    """Sentences per second of :func:`~utils.translate.run_translation` into a fresh ``out_dir``."""
    from utils.translate.engine import run_translation

    backend.translate(["Warm up."])  # untimed, like the other sides
    began = time.perf_counter()
    report = run_translation(input_path, out_dir, backend, chunk_size=10_000, progress=False)
    return report["segments"] / (time.perf_counter() - began), report


def compare_inference(
    rows: Sequence[Any],
    model: str,
    *,
    new_tokens: int = 8,
    batch_size: int = 64,
    threads: int | None = None,
    work_dir: Path | str | None = None,
) -> Any:
    """The four ways side by side on ``rows``; a ``pandas.DataFrame`` (one row per way).

    Args:
        rows: LLaVA rows (a few: the naive loop is slow on purpose).
        model: the resolved MT model (see :func:`utils.core.assets.resolve_model`).
        new_tokens: tokens generated per sentence on every side (fixed, so that a model
            that stops early cannot favour one side).
        batch_size: segments per model call for the batched sides.
        threads: CPU threads for both libraries (default: the idle cores).
        work_dir: where the engine writes its (temporary) output folders.
    """
    import pandas as pd

    from utils.translate.ct2_backend import CTranslate2Backend

    sentences = row_sentences(rows)
    fixed = {"batch_size": batch_size, "max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "device": "cpu"}
    seq2seq = Seq2SeqBackend(model, threads=threads or "auto", **fixed)
    began = time.perf_counter()
    ct2 = CTranslate2Backend(model, threads=seq2seq.threads, **fixed)
    ct2_setup_s = time.perf_counter() - began

    measured: list[tuple[str, float, str]] = [
        ("ingenuo: una frase por llamada", naive_rate(seq2seq, sentences), f"transformers, {seq2seq.dtype}"),
        (f"por lotes de {batch_size}", batched_rate(seq2seq, sentences), f"transformers, {seq2seq.dtype}"),
    ]
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        source = Path(tmp) / "muestra.jsonl"
        source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        rate, _ = engine_rate(seq2seq, source, Path(tmp) / "motor")
        measured.append(("motor (run_translation)", rate, f"transformers, {seq2seq.dtype}"))
        rate, _ = engine_rate(ct2, source, Path(tmp) / "motor-ct2")
        measured.append(("motor + CTranslate2", rate, f"CTranslate2, {ct2.quantization}"))
    naive = measured[0][1]
    table = pd.DataFrame(
        [
            {"forma": name, "modelo y precisión": how, "frases/s": round(rate, 1), "× ingenuo": round(rate / naive, 1)}
            for name, rate, how in measured
        ]
    ).set_index("forma")
    table.attrs.update(
        sentences=len(sentences),
        threads=seq2seq.threads,
        new_tokens=new_tokens,
        ct2_setup_s=round(ct2_setup_s, 1),
        ct2_model_dir=str(ct2.model_dir),
    )
    return table
