#!/usr/bin/env python
"""Naive per-sentence loop vs the course's engine on transformers and on CTranslate2: same model, same threads, one run.

    .venv/bin/python benchmarks/translation_throughput.py [--threads 2] [--dtype auto|float32|bfloat16]

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
  hashing, splitting, cache, length-sorted batches decoded by the fast greedy loop,
  fallback around protected spans, quality checks, atomic writes), in a fresh output folder.
* Same precision on both sides of each comparison: first float32 (what ``pipeline()``
  loads by default); then, when the engine picks another precision on this CPU (bfloat16
  where the CPU computes it natively, see :func:`utils.translate.backends.auto_dtype`),
  both sides again in that precision.
* Engine on CTranslate2: the same run with ``--backend ctranslate2`` (the same model
  converted once to int8, :mod:`utils.translate.ct2_backend`), on the same number of
  threads, generating the same number of tokens per sentence.

Prints the machine load, sentences per second for each side and, last, ``key=value``
lines: the rates, the load average before and after, and ``speedup=<x>``: the engine's
best backend vs the fastest naive loop measured (``--dtype float32`` forces float32).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _engine_run(backend, input_path: str) -> tuple[float, dict]:
    """Sentences per second of :func:`utils.translate.engine.run_translation` in a fresh folder, and its report."""
    from utils.translate.speed import engine_rate

    with tempfile.TemporaryDirectory() as out:
        return engine_rate(backend, input_path, Path(out) / "run")


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default=str(ROOT / "data" / "llava_instruct_mini.json"))
    parser.add_argument("--new-tokens", type=int, default=16, help="tokens generated per sentence, both sides")
    parser.add_argument("--batch-size", type=int, default=64, help="engine batch size")
    parser.add_argument("--naive-segments", type=int, default=80, help="sample size for the naive loop (0 = all)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the idle cores)")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="the engine's precision (auto: what the engine picks on this CPU)",
    )
    parser.add_argument("--quantization", default="int8", help="CTranslate2 precision (default int8)")
    args = parser.parse_args(argv)

    from utils.core.assets import resolve_model
    from utils.translate.backends import Seq2SeqBackend, auto_dtype
    from utils.translate.ct2_backend import CTranslate2Backend
    from utils.translate.speed import naive_rate, row_sentences

    load_before = os.getloadavg()
    model = resolve_model("local:opus-mt-en-es-random")
    default_dtype = auto_dtype("cpu") if args.dtype == "auto" else args.dtype
    dtypes = list(dict.fromkeys(["float32", default_dtype]))  # float32 = what pipeline() loads

    def backend(dtype: str) -> Seq2SeqBackend:
        return Seq2SeqBackend(
            model,
            batch_size=args.batch_size,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            device="cpu",
            threads=args.threads or "auto",
            dtype=dtype,
        )

    rows = json.loads(Path(args.input).read_text(encoding="utf-8"))
    sentences = row_sentences(rows)
    sample = random.Random(0).sample(sentences, k=min(len(sentences), args.naive_segments or len(sentences)))
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} (1 min); "
        f"the engine's precision here: {default_dtype}"
    )
    print(
        f"text: {len(rows)} rows, {len(sentences)} sentences ({len(set(sentences))} distinct); "
        f"{args.new_tokens} generated tokens per sentence on both sides"
    )

    speedups: dict[str, float] = {}
    naive_rates: dict[str, float] = {}
    engine_rates: dict[str, float] = {}
    for dtype in dtypes:
        same_model = backend(dtype)  # the naive loop calls its model directly; the engine batches
        naive = naive_rate(same_model, sample)
        print(
            f"naive loop, {dtype}: {len(sample)} sentences -> {naive:.2f} segments/s "
            f"(torch threads {same_model.threads})"
        )
        engine, report = _engine_run(same_model, args.input)
        speedups[dtype] = engine / naive
        print(
            f"engine, {dtype}: {report['segments']} sentences -> {engine:.2f} segments/s "
            f"({report['segments_sent']} model inputs incl. {report['fallbacks']} sentences redone around "
            f"protected spans; cache hit rate {report['cache_hit_rate']:.1%}) -> {speedups[dtype]:.1f}x "
            f"the naive loop at the same precision"
        )
        naive_rates[dtype], engine_rates[f"transformers_{dtype}"] = naive, engine
        threads = same_model.threads
        del same_model

    ct2 = CTranslate2Backend(
        model,
        batch_size=args.batch_size,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        device="cpu",
        threads=threads,
        quantization=args.quantization,
    )
    engine, report = _engine_run(ct2, args.input)
    engine_rates[f"ctranslate2_{ct2.quantization}"] = engine
    print(
        f"engine on CTranslate2, {ct2.quantization}: {report['segments']} sentences -> {engine:.2f} segments/s "
        f"({report['fallbacks']} sentences redone around protected spans; {ct2.threads} threads)"
    )

    naive = max(naive_rates.values())  # the fastest naive loop
    best = max(engine_rates, key=engine_rates.get)
    speedup = engine_rates[best] / naive
    load_after = os.getloadavg()
    results = {
        "cpus": os.cpu_count(),
        "threads": threads,
        "new_tokens": args.new_tokens,
        "load_before": f"{load_before[0]:.2f}",
        "load_after": f"{load_after[0]:.2f}",
        **{f"naive_{k}": f"{v:.2f}" for k, v in naive_rates.items()},
        **{f"engine_{k}": f"{v:.2f}" for k, v in engine_rates.items()},
        **{f"speedup_{k}": f"{v / naive:.1f}" for k, v in engine_rates.items()},
        "best": best,
        "speedup": f"{speedup:.1f}",
    }
    print("\n".join(f"{key}={value}" for key, value in results.items()))
    return speedup


if __name__ == "__main__":
    main()
