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

from utils.course import NOTEBOOKS, notebook_info  # noqa: E402
from utils.results import load_results  # noqa: E402

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
    except Exception as exc:  # kernel died, timeout
        ok = False
        error = f"{type(exc).__name__}: {exc}"[:200]
    elapsed = time.perf_counter() - start
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return ok, elapsed, error


def format_values(values: dict, limit: int = 8) -> str:
    """The first numeric figures of a results file, compactly."""
    items = []
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, NUMERIC):
            continue
        items.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
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
    selected = [notebook_info(n) for n in args.only] if args.only else list(NOTEBOOKS)
    rows = []
    total = time.perf_counter()
    for info in selected:
        print(f"▶ {info.filename} …", flush=True)
        ok, seconds, error = run_notebook(ROOT / info.repo_path, args.out / info.filename, args.timeout)
        results = load_results(info.name) or {}
        rows.append((info.name, ok, seconds, error or format_values(results.get("values", {}))))
        print(f"  {'ok' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
    total = time.perf_counter() - total

    print(f"\nPerfil: {os.environ['COURSE_PROFILE']} · cuadernos ejecutados en {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    width = max(len(r[0]) for r in rows)
    print(f"{'cuaderno':<{width}}  estado   tiempo  resultados medidos (build/results/)")
    for name, ok, seconds, detail in rows:
        print(f"{name:<{width}}  {'ok' if ok else 'FALLO':<7} {seconds:6.0f} s  {detail}")
    print(f"{'total':<{width}}  {'':<7} {total:6.0f} s")
    return 0 if all(r[1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
