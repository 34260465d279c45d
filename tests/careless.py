"""Run a notebook the way a careless learner does: some cells twice, in one kernel.

Issue 15.2: re-running a training or generation cell must not continue from what it already
did, nor replace a measurement with a cache read.  :func:`run_notebook` executes every code
cell of a notebook in one Jupyter kernel (``nbclient``) and can

* run chosen cells twice in a row (``repeat``), snapshotting the results file after each
  execution, so a test checks the second execution recorded exactly what the first did;
* re-run a whole section after it finished (``again``), as a learner going back up;
* run the whole notebook once, keep what it recorded (a single run's results, from a fresh
  kernel), then go back up and run everything from a marker to the end again
  (``rerun_from``), with ``repeat`` applied in that second pass: one kernel gives both the
  careless run and the single run it must equal, instead of two kernels;
* run probes right before chosen cells (``extra_cells``).

:func:`comparable` drops what legitimately differs between two kernels (wall times) so a
careless run can be compared with a single one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Results that are wall times or speeds: they differ between any two kernels.
TIMING = re.compile(r"(_s|_seconds|_per_s)$")


@dataclass
class CarelessRun:
    """What one kernel run did and recorded."""

    order: list[int]  # indices of the code cells, in the order they ran
    results: dict[str, Any] = field(default_factory=dict)  # the results file's values at the end
    repeats: list[tuple[int, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    # (cell index, values after the 1st execution, values after the 2nd), per repeated cell
    single: dict[str, Any] | None = None  # with ``rerun_from``: the values after the first, clean pass


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


def _values(path: Path | None) -> dict[str, Any]:
    if path is None or not Path(path).is_file():
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))["values"]


def run_notebook(
    notebook: Path,
    results_file: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    repeat: Callable[[str], bool] | None = None,
    again: tuple[str, str] | None = None,
    rerun_from: str | None = None,
    extra_cells: Mapping[str, str] | None = None,
    timeout: int = 300,
) -> CarelessRun:
    """Execute ``notebook`` top to bottom in one new kernel.

    Args:
        results_file: the notebook's results file (snapshots for ``repeat``, final ``results``).
        env: the kernel's environment (default: this process's, e.g. set by ``monkeypatch``).
        repeat: cells whose source makes it true run twice in a row.
        again: ``(first, last)`` markers: after the cell whose source contains ``last``,
            the cells from the one containing ``first`` up to it run once more, in order.
        extra_cells: ``{marker: code}``: ``code`` runs in the same kernel right before each
            cell whose source contains ``marker`` (probes for tests).
        rerun_from: after every cell ran once (``CarelessRun.single`` = the values recorded
            then), the cells from the one containing this marker to the last run again;
            ``repeat`` then applies to that second pass only.
        timeout: seconds per cell.

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell fails (with its traceback).
    """
    import nbformat
    from nbclient import NotebookClient

    if again and rerun_from is not None:
        raise ValueError("use either again or rerun_from, not both")
    nb = nbformat.read(notebook, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    order = list(code)
    second_pass = len(order)  # where ``repeat`` starts to apply
    if rerun_from is not None:
        start = next(i for i in code if rerun_from in nb.cells[i].source)
        order += [i for i in code if i >= start]
    if again:
        first, last = (next(i for i in code if marker in nb.cells[i].source) for marker in again)
        section = [i for i in code if first <= i <= last]
        order = order[: order.index(last) + 1] + section + order[order.index(last) + 1 :]
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(Path(notebook).parent)}}
    )
    run = CarelessRun(order=order)
    probes_run: set[str] = set()
    kernel_kwargs = {"env": dict(env)} if env is not None else {}
    with client.setup_kernel(**kernel_kwargs):
        for position, index in enumerate(order):
            cell = nb.cells[index]
            if rerun_from is not None and position == second_pass:
                run.single = _values(results_file)
            for marker, probe in (extra_cells or {}).items():
                if marker in cell.source:
                    client.execute_cell(nbformat.v4.new_code_cell(probe), index)
                    probes_run.add(marker)
            client.execute_cell(cell, index)
            repeats_here = rerun_from is None or position >= second_pass
            if repeat is not None and repeats_here and repeat(cell.source):
                first_values = _values(results_file)
                client.execute_cell(cell, index)
                run.repeats.append((index, first_values, _values(results_file)))
    if repeat is not None and not run.repeats:
        raise AssertionError("repeat() matched no cell: the run would prove nothing")
    missing = set(extra_cells or {}) - probes_run
    if missing:
        raise AssertionError(f"markers not found in {Path(notebook).name}: {sorted(missing)}")
    run.results = _values(results_file)
    return run


def results_file(build_dir: Path, notebook: Path) -> dict[str, Any]:
    """The results a notebook recorded under ``build_dir/results``."""
    return json.loads((Path(build_dir) / "results" / f"{Path(notebook).stem}.json").read_text(encoding="utf-8"))


def comparable(results: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded values (a results file or its ``values``) without wall times and speeds."""
    values = results.get("values", results)
    return {k: v for k, v in values.items() if not TIMING.search(k)}
