"""Run a notebook the way a careless learner does: some cells twice, in one kernel.

Issue 15.2: re-running a training cell must not continue from the model it already
trained.  :func:`run_notebook` executes every code cell of a notebook in one Jupyter
kernel (``nbclient``), repeating the cells whose source contains a given marker, and
returns the notebook's results file; :func:`comparable` drops what legitimately differs
between two runs (wall-clock timings) so a careless run can be compared with a single one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Results keys that measure time: they differ between any two runs.
TIMING_SUFFIXES = ("_s", "_seconds")


def kernel_env(build_dir: Path, overrides: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """Environment of the kernel: mini profile, this checkout's sources, its own build folder."""
    env = dict(os.environ)
    env.update(
        COURSE_PROFILE="mini",
        COURSE_BUILD_DIR=str(build_dir),
        COURSE_SETTINGS_OVERRIDES=json.dumps(dict(overrides)),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])),
        **extra,
    )
    return env


def run_notebook(
    notebook: Path,
    *,
    env: Mapping[str, str],
    again: tuple[str, str] | None = None,
    extra_cells: Mapping[str, str] | None = None,
    timeout: int = 300,
) -> list[int]:
    """Execute ``notebook`` top to bottom in one kernel; return the indices of the cells run.

    Args:
        again: ``(first, last)`` markers: after the cell whose source contains ``last``,
            the cells from the one containing ``first`` up to it run once more, in order
            (a learner re-running a section).
        extra_cells: ``{marker: code}``: ``code`` runs in the same kernel right before each
            cell whose source contains ``marker`` (probes for tests).
        timeout: seconds per cell.

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell fails (with its traceback).
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    order = list(code)
    if again:
        first, last = (next(i for i in code if marker in nb.cells[i].source) for marker in again)
        section = [i for i in code if first <= i <= last]
        order = order[: order.index(last) + 1] + section + order[order.index(last) + 1 :]
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(Path(notebook).parent)}}
    )
    probes_run: set[str] = set()
    with client.setup_kernel(env=dict(env)):
        for index in order:
            cell = nb.cells[index]
            for marker, probe in (extra_cells or {}).items():
                if marker in cell.source:
                    client.execute_cell(nbformat.v4.new_code_cell(probe), index)
                    probes_run.add(marker)
            client.execute_cell(cell, index)
    missing = set(extra_cells or {}) - probes_run
    if missing:
        raise AssertionError(f"markers not found in {Path(notebook).name}: {sorted(missing)}")
    return order


def results_file(build_dir: Path, notebook: Path) -> dict[str, Any]:
    """The results a notebook recorded under ``build_dir/results``."""
    return json.loads((Path(build_dir) / "results" / f"{Path(notebook).stem}.json").read_text(encoding="utf-8"))


def comparable(results: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded values without wall-clock timings (and the bookkeeping around them)."""
    values = results.get("values", results)
    return {k: v for k, v in values.items() if not k.endswith(TIMING_SUFFIXES)}
