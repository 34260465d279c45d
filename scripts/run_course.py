#!/usr/bin/env python
"""Run every notebook end to end (mini profile by default) and summarize what they measured.

    python scripts/run_course.py              # all five notebooks
    python scripts/run_course.py --only 03 05 # some of them

Executed copies, with outputs, are saved under ``build/notebooks/``; each notebook writes
its measured figures to ``build/results/<name>.json``; the summary table at the end shows
the wall time of each notebook and those figures.  The exit status is 1 if any notebook
failed (the others still run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from utils.core.course import NOTEBOOKS, UnknownNotebookError, notebook_info
from utils.core.results import load_results

NUMERIC = (int, float)


def run_notebook(src: Path, dst: Path, timeout: int) -> tuple[bool, float, str]:
    """Execute ``src`` in a fresh kernel (cwd = notebooks/) and save it with outputs to ``dst``."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(src.parent)}},
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
        ok = True
    except CellExecutionError as exc:
        ok = False
        error = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else "cell error"
    except Exception as exc:  # noqa: BLE001 - kernel died, timeout
        ok = False
        error = f"{type(exc).__name__}: {exc}"[:200]
    elapsed = time.perf_counter() - start
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return ok, elapsed, error


#: The figures each notebook is about, in the order the summary shows them.
HEADLINES: dict[str, tuple[str, ...]] = {
    "01": ("seq2seq_rows_translated", "seq2seq_rows_quarantined", "seq2seq_segments_per_s", "seq2seq_cache_hit_rate"),
    "02": ("final_sft", "final_dpo", "judge_reviewer_agreement"),
    "03": ("chrf_base", "chrf_good", "chrf_bad", "chrf_gap", "bleu_good", "bleu_bad"),
    "04": ("acc_before", "acc_after", "acc_majority", "merge_outputs_equal"),
    "05": ("json_valid_first_try", "json_valid_after_repair", "json_invalid", "chat_turns"),
}


def _fmt(key: str, value: object) -> str:
    if isinstance(value, float):
        return f"{key}={value:.3g}"
    return f"{key}={value}"


def format_values(values: dict, headline: tuple[str, ...] = (), limit: int = 8) -> str:
    """The notebook's headline figures (``HEADLINES``), or its first numeric ones if none recorded."""
    shown = [_fmt(k, values[k]) for k in headline if k in values]
    missing = [k for k in headline if k not in values]
    if shown:
        return ", ".join(shown) + (f" (sin medir: {', '.join(missing)})" if missing else "")
    items = []
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, NUMERIC):
            continue
        items.append(_fmt(key, value))
        if len(items) == limit:
            break
    return ", ".join(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the course notebooks and summarize their results.")
    parser.add_argument("--only", nargs="*", default=None, help="notebook prefixes, e.g. 01 03")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "notebooks")
    args = parser.parse_args(argv)

    os.environ.setdefault("COURSE_PROFILE", "mini")
    os.environ["COURSE_ROOT"] = str(ROOT)
    try:
        selected = [notebook_info(n) for n in args.only] if args.only else list(NOTEBOOKS)
    except UnknownNotebookError as exc:
        parser.error(str(exc))
    rows = []
    total = time.perf_counter()
    for info in selected:
        print(f"▶ {info.filename} …", flush=True)
        ok, seconds, error = run_notebook(ROOT / info.repo_path, args.out / info.filename, args.timeout)
        results = load_results(info.name) or {}
        values = results.get("values", {})
        rows.append((info.name, ok, seconds, error or format_values(values, HEADLINES.get(info.name[:2], ()))))
        print(f"  {'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
    total = time.perf_counter() - total

    print(
        f"\nPerfil: {os.environ['COURSE_PROFILE']} · cuadernos ejecutados en {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'cuaderno':<{width}}  estado   tiempo  resultados medidos (build/results/)")
    for name, ok, seconds, detail in rows:
        print(f"{name:<{width}}  {'ok' if ok else 'FALLO':<7} {seconds:6.0f} s  {detail}")
    print(f"{'total':<{width}}  {'':<7} {total:6.0f} s")
    return 0 if all(r[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
