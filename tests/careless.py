"""Run a notebook as a careless learner would: some cells executed twice in one kernel.

A learner who re-runs a training or generation cell must get the same recorded results as
one who ran every cell once.  :func:`run_notebook` executes a notebook top to bottom in a
fresh kernel, running the cells chosen by ``repeat`` twice in a row, and returns the
values the notebook recorded in ``build/results/<name>.json`` (``COURSE_BUILD_DIR`` points
each run at its own folder).  :func:`comparable` drops what legitimately differs between
runs (wall times).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def code_cells(path: Path) -> list[str]:
    """Source of each code cell of the notebook at ``path``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def run_notebook(
    path: Path,
    build_dir: Path,
    *,
    repeat: Callable[[str], bool] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: int = 600,
) -> dict[str, Any]:
    """Execute ``path`` in one fresh kernel, each cell where ``repeat(source)`` is true twice.

    Only code cells run (outputs are not kept).  The kernel's environment is this process's
    plus ``env``, with ``COURSE_BUILD_DIR=build_dir`` and ``COURSE_ROOT`` set; it starts in
    ``notebooks/`` like ``make course``.  Returns the ``values`` of the results file.

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell fails (the message names it).
        AssertionError: when ``repeat`` matches no cell (the test would prove nothing).
    """
    import nbformat
    from nbclient import NotebookClient

    cells = []
    repeated = 0
    for source in code_cells(path):
        times = 2 if repeat is not None and repeat(source) else 1
        repeated += times - 1
        cells += [nbformat.v4.new_code_cell(source) for _ in range(times)]
    assert repeat is None or repeated, "repeat() matched no cell: the run would prove nothing"
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    kernel_env = {**os.environ, **(env or {}), "COURSE_BUILD_DIR": str(build_dir), "COURSE_ROOT": str(ROOT)}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env)
    results = build_dir / "results" / f"{path.stem}.json"
    return json.loads(results.read_text(encoding="utf-8"))["values"]


def comparable(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without wall times (keys ending in ``_s``), which differ on every run."""
    return {k: v for k, v in values.items() if not k.endswith("_s")}
