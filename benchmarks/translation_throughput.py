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

* Ray scaling (``--ray-workers 1,2``; ``--ray-workers 0`` skips it): the engine on
  CTranslate2 again, one thread per worker, first in this process (the baseline), then on
  a local Ray cluster (:mod:`utils.services.ray_cluster`, ``COURSE_RAY_PORT``) with 1 and
  with 2 actors (one model each, :class:`utils.translate.ray_runner.RayWorkers`), on all
  rows in chunks of ``--ray-chunk-size``.  ``ray_overhead`` is how much slower 1 actor is
  than the same work in this process; ``ray_scaling`` is 2 actors' rate over 1 actor's.
  The cluster's start and the actors' model loading are timed apart (``ray_cluster_start_s``,
  ``ray_actors_start_s_*``): they are paid once per job, not per row.

Prints the machine load, sentences per second for each side and, last, ``key=value``
lines: the rates, the load average before and after, ``speedup_vs_fastest_naive=<x>`` (the
engine's best backend vs the fastest naive loop measured, bfloat16 where the CPU computes it)
and, last, ``speedup=<x>``: the engine's best backend vs the naive loop as it is usually
written, in float32 (transformers' default dtype and the 2.3 sentences/s loop issue 13 measured).
``--dtype float32`` keeps the engine's transformers backend in float32 too.
On a machine shared with other programs every rate is lower than idle and 2 workers
cannot scale to 2x: read ``load_before``/``load_after`` with them.
"""

from __future__ import annotations

import argparse
import functools
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


def row_sentences(rows) -> list[str]:
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


def naive_rate(backend, sentences) -> float:
    """Sentences per second of one tokenizer call + one ``generate`` + one decode per sentence."""
    import time

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


def _engine_run(backend, input_path: str) -> tuple[float, dict]:
    """Sentences per second of :func:`utils.translate.engine.run_translation` in a fresh folder, and its report."""
    import time

    from utils.translate.engine import run_translation

    backend.translate(["Warm up."])  # untimed, like the other sides
    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        report = run_translation(input_path, Path(out) / "run", backend, chunk_size=10_000, progress=False)
        return report["segments"] / (time.perf_counter() - began), report


def _timed_run(input_path: str, backend, workers, chunk_size: int) -> tuple[float, dict]:
    """Sentences per second of one engine run (fresh folder), in this process or on Ray ``workers``."""
    import time

    from utils.translate.engine import run_translation

    with tempfile.TemporaryDirectory() as out:
        began = time.perf_counter()
        report = run_translation(
            input_path, Path(out) / "run", backend, chunk_size=chunk_size, progress=False, workers=workers
        )
        return report["segments"] / (time.perf_counter() - began), report


def ray_scaling(factory, input_path: str, counts: list[int], chunk_size: int, project_rows: int) -> dict[str, str]:
    """The engine on CTranslate2 in this process, then on a local Ray cluster with each count of actors.

    Also projects the hours ``project_rows`` rows would take at each measured rate, with this
    input's sentences per row (``projection_…``): arithmetic on the measurement, not a run.
    """
    import time

    from utils.services import ray_cluster
    from utils.translate.ray_runner import RayWorkers

    baseline, report = _timed_run(input_path, factory(), None, chunk_size)
    print(f"engine in this process, 1 thread: {report['segments']} sentences -> {baseline:.2f} segments/s")
    results = {
        "ray_chunks": str(report["chunks_total"]),
        "sentences_per_row": f"{report['segments'] / report['rows_in']:.2f}",
        "ray_baseline_1proc": f"{baseline:.2f}",
    }
    began = time.perf_counter()
    with ray_cluster.cluster("local", num_cpus=max(counts)) as address:
        results["ray_cluster_start_s"] = f"{time.perf_counter() - began:.1f}"
        rates = {}
        for count in counts:
            began = time.perf_counter()
            with RayWorkers(address, factory, workers=count) as workers:
                results[f"ray_actors_start_s_{count}"] = f"{time.perf_counter() - began:.1f}"
                rates[count], report = _timed_run(input_path, None, workers, chunk_size)
            print(
                f"engine on Ray, {count} actor(s) x 1 thread: {report['segments']} sentences in "
                f"{report['chunks_total']} chunks -> {rates[count]:.2f} segments/s"
            )
            results[f"ray_workers_{count}"] = f"{rates[count]:.2f}"
            results[f"ray_per_worker_{count}"] = f"{rates[count] / count:.2f}"
    if 1 in rates:
        results["ray_overhead"] = f"{1 - rates[1] / baseline:.1%}"
        if len(rates) > 1:
            results["ray_scaling"] = f"{rates[max(rates)] / rates[1]:.2f}"
    per_row = report["segments"] / report["rows_in"]
    for count, rate in rates.items():  # a projection, not a measurement: rows x sentences/row / rate
        results[f"projection_{project_rows}_rows_h_{count}w"] = f"{project_rows * per_row / rate / 3600:.1f}"
    return results


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
    parser.add_argument(
        "--ray-workers", default="1,2", help="Ray actors to compare, comma-separated (default 1,2; 0 = no Ray run)"
    )
    parser.add_argument("--ray-chunk-size", type=int, default=8, help="rows per chunk in the Ray runs")
    parser.add_argument(
        "--ray-device", default="cpu", choices=["cpu", "cuda", "auto"], help="CTranslate2 device in the Ray runs"
    )
    parser.add_argument(
        "--project-rows", type=int, default=157_712, help="rows to project hours for (LLaVA-Instruct-150K: 157,712)"
    )
    args = parser.parse_args(argv)

    from utils.core.assets import resolve_model
    from utils.translate.backends import Seq2SeqBackend, auto_dtype
    from utils.translate.ct2_backend import CTranslate2Backend

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

    counts = [int(c) for c in args.ray_workers.split(",") if int(c) > 0]
    ray_results = {}
    if counts:
        factory = functools.partial(
            CTranslate2Backend,
            model,
            batch_size=args.batch_size,
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            device=args.ray_device,
            threads=1,
            quantization="auto" if args.ray_device != "cpu" else args.quantization,
        )
        ray_results = ray_scaling(factory, args.input, counts, args.ray_chunk_size, args.project_rows)

    naive = naive_rates["float32"]  # the loop as usually written: transformers' default dtype
    fastest_naive = max(naive_rates.values())  # bfloat16 where the CPU computes it natively
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
        **ray_results,
        "speedup_vs_fastest_naive": f"{engine_rates[best] / fastest_naive:.1f}",
        "speedup": f"{speedup:.1f}",
    }
    print("\n".join(f"{key}={value}" for key, value in results.items()))
    return speedup


if __name__ == "__main__":
    main()
