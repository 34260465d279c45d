"""Cost of committing one chunk as a run grows: flat with the commit log (issue 15).

Two measurements, both with real files and fsyncs in a temporary folder:

1. **Commit time per chunk**: :meth:`ChunkStore.commit` of ``--chunks`` chunks (10 rows
   and a realistic QA summary each); prints the mean milliseconds and bytes written per
   commit around chunk 10, 100, 500, 1,000 and 2,000.  With ``--compare REF`` the same
   loop runs with the ``store.py`` of a git revision (e.g. ``main`` before the commit log,
   which rewrote the whole manifest at every commit).
2. **End to end**: :func:`run_translation` of ``--rows`` duplicate rows in chunks of 10
   with an instant stand-in backend, so that wall time is the engine's own overhead;
   prints wall seconds against the seconds spent translating.

Not part of ``make test``; run it by hand::

    .venv/bin/python benchmarks/commit_cost.py                      # this checkout
    .venv/bin/python benchmarks/commit_cost.py --compare main       # and the old store.py

Timings depend on the disk (fsync) and on what else runs on the machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MARKS = (10, 100, 500, 1000, 2000)


def _bytes_written() -> int:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _store_module(ref: str | None):
    if ref is None:
        from utils.translate import store

        return store
    source = subprocess.run(
        ["git", "show", f"{ref}:src/utils/translate/store.py"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / f"store_{ref.replace('/', '_')}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def commit_times(chunks: int, ref: str | None) -> dict[int, tuple[float, float]]:
    """Mean (ms, bytes) per commit over the 10 commits before each mark."""
    store_mod = _store_module(ref)
    rows = [
        {
            "id": f"{i:012d}",
            "image": f"{i:012d}.jpg",
            "row_index": i,
            "conversations": [
                {"from": "human", "value": "<image>\n¿De qué color es el autobús?"},
                {"from": "gpt", "value": "El autobús es blanco y rojo, y va por la calle."},
            ],
            "conversations_en": [
                {"from": "human", "value": "<image>\nWhat color is the bus?"},
                {"from": "gpt", "value": "The bus is white and red, driving down the street."},
            ],
        }
        for i in range(10)
    ]
    qa = {
        "turns_checked": 20,
        "turns_flagged": 4,
        "flag_counts_turns": {"not_spanish": 4, "length_ratio": 1},
        "flag_counts_rows": {"not_spanish": 2},
        "flagged_rows": [{"row_index": i, "id": f"{i:012d}", "flags": {"not_spanish": [0, 1]}} for i in range(2)],
    }
    stats = {"segments": 40, "requests": 40, "segments_sent": 5, "cache_hits": 35, "seconds": 0.2}
    with tempfile.TemporaryDirectory() as tmp:
        identity = store_mod.RunIdentity("sha", "in.json", chunks * 10, 10, store_mod.Shard(), "bench")
        store = store_mod.ChunkStore(Path(tmp) / "out", identity)
        samples: list[tuple[float, int]] = []
        for chunk in range(chunks):
            before_b, began = _bytes_written(), time.perf_counter()
            store.commit(chunk, rows, [], stats, qa)
            samples.append(((time.perf_counter() - began) * 1000, _bytes_written() - before_b))
        store.close()
    out = {}
    for mark in MARKS:
        if mark <= chunks:
            window = samples[max(0, mark - 10) : mark]
            out[mark] = (statistics.mean(s[0] for s in window), statistics.mean(s[1] for s in window))
    return out


class Instant:
    """A stand-in backend that answers at once: wall time is the engine's own overhead."""

    name = "instant"
    batch_size = 64

    def translate(self, texts):
        return [f"ES {t}" for t in texts]


def end_to_end(rows: int) -> dict[str, float]:
    from utils.translate.engine import run_translation

    row = {
        "id": "000000033471",
        "image": "000000033471.jpg",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat color is the bus?"},
            {"from": "gpt", "value": "The bus is white and red."},
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "dup.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for _ in range(rows)), encoding="utf-8")
        began = time.perf_counter()
        report = run_translation(source, Path(tmp) / "out", Instant(), chunk_size=10, progress=False)
        wall = time.perf_counter() - began
    return {
        "rows": rows,
        "chunks": report["chunks_done"],
        "wall_s": round(wall, 2),
        "translate_s": report["translate_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000, help="chunks to commit (default 2000)")
    parser.add_argument("--rows", type=int, default=10000, help="rows of the end-to-end run (0: skip it)")
    parser.add_argument("--compare", metavar="REF", help="also time the store.py of this git revision, e.g. main")
    args = parser.parse_args()
    runs = [("this checkout", None)] + ([(args.compare, args.compare)] if args.compare else [])
    for label, ref in runs:
        print(f"commit cost, {label} (mean of the 10 commits before each mark):", flush=True)
        for mark, (ms, nbytes) in commit_times(args.chunks, ref).items():
            print(f"  chunk {mark:>5}: {ms:7.2f} ms/commit, {nbytes / 1024:8.1f} KiB written/commit", flush=True)
    if args.rows:
        result = end_to_end(args.rows)
        print(
            f"end to end: {result['rows']} rows in {result['chunks']} chunks: wall {result['wall_s']} s, "
            f"translating {result['translate_s']} s (the rest is reading, committing and the report)"
        )


if __name__ == "__main__":
    main()
