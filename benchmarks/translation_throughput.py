#!/usr/bin/env python
"""Naive per-sentence translation loop vs the course's engine: same model, same machine, one run.

    .venv/bin/python benchmarks/translation_throughput.py [--new-tokens 16] [--naive-segments 80]

* Model: MarianMT with the configuration of ``Helsinki-NLP/opus-mt-en-es`` (6+6 layers,
  d_model 512, 65,001-token output layer) and random weights
  (``local:opus-mt-en-es-random``), so the compute per token is the real model's.
* Text: the LLaVA-style rows of ``data/llava_instruct_mini.json``, split into sentences by
  :func:`utils.translate.segment_text` (the same sentences for both sides).
* Equal work per sentence: both sides generate exactly ``--new-tokens`` tokens (greedy,
  ``min_new_tokens == max_new_tokens``), so random weights cannot make one side stop early.
* Naive: one tokenizer call + one ``generate`` + one decode per sentence occurrence, in
  order — what ``transformers.pipeline("translation")`` did on each call.  That pipeline
  was removed in transformers 5 (the course pins 5.23.0: ``pipeline("translation")``
  raises "The task translation has been removed"), so its per-call work is written out.
  It runs on a fixed random sample of the sentences (``--naive-segments``; 0 = all),
  because its rate does not depend on which sentences come before.
* Engine: :func:`utils.translate.run_translation` on all rows, timed end to end (reading,
  hashing, splitting, cache, length-sorted batches, fallback around protected spans,
  quality checks, atomic writes), in a fresh output folder.

Prints the machine load, sentences per second for each side and, last, ``speedup=<x>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _sentences(rows: list) -> list[str]:
    from utils.translate.records import validate_row
    from utils.translate.segments import segment_text

    sentences: list[str] = []
    for index, obj in enumerate(rows):
        row = validate_row(obj, index)
        if isinstance(row, str):
            continue
        for turn in row.turns:
            sentences += [s.text for s in segment_text(turn.value).segments]
    return sentences


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT / "data" / "llava_instruct_mini.json"))
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per sentence, both sides")
    parser.add_argument("--batch-size", type=int, default=64, help="engine batch size")
    parser.add_argument("--naive-segments", type=int, default=80, help="sample size for the naive loop (0 = all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    args = parser.parse_args(argv)

    import torch

    from utils.assets import resolve_model
    from utils.translate.backends import Seq2SeqBackend
    from utils.translate.engine import run_translation

    load_before = os.getloadavg()
    backend = Seq2SeqBackend(
        resolve_model("local:opus-mt-en-es-random"),
        batch_size=args.batch_size,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        device="cpu",
        threads=args.threads or "auto",
    )
    rows = json.loads(Path(args.input).read_text(encoding="utf-8"))
    sentences = _sentences(rows)
    sample = random.Random(0).sample(sentences, k=min(len(sentences), args.naive_segments or len(sentences)))
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} (1 min), torch threads {backend.threads}")
    print(f"text: {len(rows)} rows, {len(sentences)} sentences ({len(set(sentences))} distinct); "
          f"{args.new_tokens} generated tokens per sentence on both sides")

    tokenizer, model, kwargs = backend.tokenizer, backend.model, backend.generate_kwargs
    with torch.inference_mode():  # warm-up, untimed
        model.generate(**tokenizer(["Warm up."], return_tensors="pt"), **kwargs)

    began = time.perf_counter()
    with torch.inference_mode():
        for sentence in sample:
            inputs = tokenizer([sentence], return_tensors="pt", truncation=True)
            tokenizer.batch_decode(model.generate(**inputs, **kwargs), skip_special_tokens=True)
    naive_s = time.perf_counter() - began
    naive_rate = len(sample) / naive_s
    print(f"naive loop: {len(sample)} sentences in {naive_s:.1f} s -> {naive_rate:.2f} segments/s")

    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        report = run_translation(args.input, Path(out) / "run", backend, chunk_size=len(rows), progress=False)
        engine_s = time.perf_counter() - began
    engine_rate = report["segments"] / engine_s
    print(
        f"engine: {report['segments']} sentences in {engine_s:.1f} s -> {engine_rate:.2f} segments/s "
        f"({report['segments_sent']} model inputs incl. {report['fallbacks']} sentences redone around "
        f"protected spans; cache hit rate {report['cache_hit_rate']:.1%})"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    speedup = engine_rate / naive_rate
    print(f"speedup={speedup:.1f}")
    return speedup


if __name__ == "__main__":
    main()
