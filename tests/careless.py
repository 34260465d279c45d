"""The careless learner: run a notebook in one kernel, executing chosen cells twice.

A learner re-runs a cell (Shift+Enter twice, or "run all" after a partial run) and expects
the lesson to stay true.  :func:`run_notebook` executes every code cell in order with
``nbclient`` in a fresh kernel, runs each cell picked by ``repeat`` a second time right
after the first, and snapshots the notebook's results file (``build/results/<name>.json``)
after each execution of a repeated cell, so a test can check that:

* the second execution recorded exactly what the first did (timings included: a re-run
  must not replace a measurement with a cache read), and
* the whole run recorded what a run without repeats records (:func:`comparable`, which
  leaves out wall times, different in any two kernels).

The kernel inherits this process's environment (``COURSE_PROFILE``, ``COURSE_BUILD_DIR``,
``COURSE_SETTINGS_OVERRIDES``…): set them before calling, e.g. with ``monkeypatch.setenv``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

#: Results that are wall times (seconds, speeds): they differ between any two kernels.
TIMING = re.compile(r"(_s|_per_s)$")


@dataclass
class CarelessRun:
    """What one kernel run recorded."""

    results: dict[str, Any]  # the results file's ``values`` at the end
    repeats: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    # (cell index, values after the 1st execution, values after the 2nd), per repeated cell


def _values(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))["values"] if path.is_file() else {}


def run_notebook(
    notebook: Path,
    results_file: Path,
    *,
    repeat: Callable[[str], bool] = lambda source: False,
    timeout: int = 600,
) -> CarelessRun:
    """Execute ``notebook`` top to bottom in a new kernel; cells where ``repeat(source)`` run twice.

    Raises ``nbclient.exceptions.CellExecutionError`` (with the cell's traceback) if a cell fails.
    """
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}})
    run = CarelessRun(results={})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.execute_cell(cell, index)
            if repeat(cell.source):
                first = _values(results_file)
                client.execute_cell(cell, index)
                run.repeats.append((index, first, _values(results_file)))
    run.results = _values(results_file)
    return run


def comparable(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without wall times (keys ending in ``_s`` or ``_per_s``)."""
    return {key: value for key, value in values.items() if not TIMING.search(key)}
