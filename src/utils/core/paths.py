"""Where things live: the repository root, committed data, build outputs and caches.

The course runs from a clone (locally or in Colab), so every path is resolved from the
repository root.  The root is found, in order, from the ``COURSE_ROOT`` environment
variable, by walking up from the current directory, or by walking up from this file.
"""

from __future__ import annotations

import os
from pathlib import Path

from utils.core.errors import CourseError

_MARKER = Path("src") / "utils" / "core" / "settings.py"


class CourseRootNotFoundError(CourseError):
    """Raised when no clone of the course can be found."""


def _is_root(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / _MARKER).is_file()


def repo_root() -> Path:
    """Return the root folder of the course repository.

    Raises:
        CourseRootNotFoundError: with instructions when no clone is found.
    """
    env = os.environ.get("COURSE_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if _is_root(root):
            return root
        raise CourseRootNotFoundError(
            f"COURSE_ROOT={env!r} no es una copia del curso (allí no hay pyproject.toml ni "
            f"{_MARKER}). Bórrala (`unset COURSE_ROOT`) o apúntala a la carpeta que tiene el README.md."
        )
    for start in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for candidate in (start, *start.parents):
            if _is_root(candidate):
                return candidate
    raise CourseRootNotFoundError(
        "No encuentro la copia del curso. Ejecuta el cuaderno desde dentro del clon "
        "(por ejemplo `cd curso && make lab`) o exporta COURSE_ROOT con la carpeta del clon."
    )


def data_dir() -> Path:
    """Committed mini datasets (``data/``)."""
    return repo_root() / "data"


def build_dir() -> Path:
    """Generated outputs (``build/``, git-ignored). ``COURSE_BUILD_DIR`` overrides it."""
    env = os.environ.get("COURSE_BUILD_DIR")
    path = Path(env).expanduser() if env else repo_root() / "build"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_dir() -> Path:
    """Where each notebook writes the figures it measured (``build/results``)."""
    path = build_dir() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir() -> Path:
    """Pid and log files of local services started by the course (``build/run``)."""
    path = build_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir() -> Path:
    """Models converted or built once and reused (``COURSE_CACHE_DIR`` or ``~/.cache/curso-llm``).

    The cache lives outside the clone so that several clones (and CI re-runs on the same
    machine) share converted models.
    """
    env = os.environ.get("COURSE_CACHE_DIR")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "curso-llm"
    path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    """The five course notebooks."""
    return repo_root() / "notebooks"
