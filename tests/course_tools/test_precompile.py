"""scripts/precompile.py (run by scripts/setup after ``pip install --no-compile``) names real modules.

A misspelt module would make the precompile import fail quietly (it only warns: it is an
optimisation), and every process would then compile that library's files again on import.
"""

from __future__ import annotations

import importlib.util
import runpy

from utils.core.paths import repo_root

ROOT = repo_root()


def test_every_module_the_precompile_imports_exists():
    groups = runpy.run_path(str(ROOT / "scripts" / "precompile.py"))["GROUPS"]
    names = [name for group in groups for name in group]
    assert len(names) == len(set(names)) > 20
    assert [name for name in names if importlib.util.find_spec(name) is None] == []


def test_setup_installs_without_compiling_and_then_precompiles():
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    assert "pip install --no-compile -r requirements.txt" in setup
    assert setup.index("--no-compile -r requirements.txt") < setup.index("scripts/precompile.py")
