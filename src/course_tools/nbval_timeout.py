"""pytest plugin: a notebook cell that passes nbval's ``--nbval-cell-timeout`` fails the run.

On timeout nbval interrupts the kernel and counts on the ``KeyboardInterrupt`` to fail the cell.
Code that handles SIGINT itself swallows it: distilabel's ``Pipeline.run`` installs a handler
that stops the pipeline gracefully, so the interrupted cell *returns*, nbval reports it as
passed and marks every later cell "expected to fail" (XPASS, which does not fail a run).  A
notebook 02 rehearsal cut short at 900 s passed that way (measured 29-11-2026).  This plugin
turns the cell during which nbval flagged the timeout into a failure that says so.

Loaded by ``addopts`` in pyproject.toml (``-p course_tools.nbval_timeout``).
"""

from __future__ import annotations

import pytest

_REPORTED = "_course_timeout_reported"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    notebook = getattr(item, "parent", None)
    if call.when != "call" or not getattr(notebook, "timed_out", False) or getattr(notebook, _REPORTED, False):
        return
    setattr(notebook, _REPORTED, True)
    timeout = item.config.getoption("nbval_cell_timeout", default=None)
    report.outcome = "failed"
    report.longrepr = (
        f"The cell ran past --nbval-cell-timeout={timeout} s: nbval interrupted the kernel and the cell "
        "returned anyway (its code handled the interrupt), so what it computed is incomplete and the "
        "following cells ran on it. Make the cell faster or raise the timeout."
    )
