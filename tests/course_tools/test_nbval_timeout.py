"""A notebook cell that swallows nbval's timeout interrupt must fail the run (course_tools.nbval_timeout)."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

pytestmark = pytest.mark.slow

CELLS = [
    "import time",
    # What distilabel's Pipeline.run does on SIGINT: stop gracefully and return.
    "try:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('stopped gracefully')",
    "print('after')",
]


def _run(tmp_path, *plugin_args):
    notebook = tmp_path / "swallows.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in CELLS])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            *plugin_args,
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=3",
            "-q",
            str(notebook),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_cell_that_swallows_the_timeout_interrupt_fails(tmp_path):
    result = _run(tmp_path, "-p", "course_tools.nbval_timeout")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "--nbval-cell-timeout=3" in result.stdout and "1 failed" in result.stdout, result.stdout[-2000:]


def test_without_the_plugin_nbval_lets_it_pass(tmp_path):
    """Why the plugin exists: plain nbval reports the same notebook as passed."""
    result = _run(tmp_path)
    assert result.returncode == 0 and "xpassed" in result.stdout, result.stdout[-2000:]
