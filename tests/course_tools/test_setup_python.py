"""`make setup` (scripts/setup) accepts Python 3.11, 3.12 and 3.13 and says which one it used.

SETUP_ONLY_CHECK_PYTHON=1 stops the script right after it chose the interpreter, so these
tests install nothing; VENV points where no venv can be created, so a script that ignored
the flag would fail at once instead of installing the course.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from course_tools.colab_env import find_python

ROOT = Path(__file__).resolve().parents[2]


def run_setup(python: str | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}
    env.update(SETUP_ONLY_CHECK_PYTHON="1", VENV="/dev/null/venv")
    if python is not None:
        env["PYTHON"] = python
    return subprocess.run(["bash", "scripts/setup"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", [(3, 11), (3, 12), (3, 13)], ids=lambda v: "{}.{}".format(*v))
def test_setup_accepts_supported_python(version, tmp_path):
    python = find_python(version)
    if python is None:
        pytest.skip("Python {}.{} is not installed here".format(*version))
    proc = run_setup(python, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "uso Python {}.{}".format(*version) in proc.stdout


def test_setup_picks_a_python_and_names_it(tmp_path):
    proc = run_setup(None, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(f"uso Python 3.{minor}" in proc.stdout for minor in (11, 12, 13)), proc.stdout


def test_setup_rejects_other_versions_in_spanish(tmp_path):
    old = find_python((3, 10))
    if old is None:
        pytest.skip("no Python 3.10 here to show the refusal")
    proc = run_setup(old, tmp_path)
    assert proc.returncode == 1
    assert "necesita Python 3.11, 3.12 o 3.13" in proc.stderr and "3.10" in proc.stderr


def test_setup_rejects_a_python_that_does_not_run(tmp_path):
    proc = run_setup(str(tmp_path / "no-such-python"), tmp_path)
    assert proc.returncode == 1 and "no se puede ejecutar" in proc.stderr
