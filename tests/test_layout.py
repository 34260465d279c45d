"""The learner's package is laid out by lesson: ``utils.core``, ``utils.services`` and one subpackage per
notebook; a lesson imports only the core and the services, never another lesson (README §Estructura)."""

import ast
from pathlib import Path

import pytest

UTILS = Path(__file__).resolve().parents[1] / "src" / "utils"
LESSONS = ("translate", "sft_dpo", "good_bad", "llava_vqa", "prompting")
ALLOWED = {
    "core": {"core"},
    "services": {"core", "services"},
    **{lesson: {"core", "services", lesson} for lesson in LESSONS},
}


def utils_imports(path: Path) -> set[str]:
    """The ``utils`` subpackages that ``path`` imports (``utils.core.settings`` -> ``core``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if node.module == "utils"]
        found |= {name.split(".")[1] for name in names if name.startswith("utils.")}
    return found


def test_only_packages_at_the_top():
    """No flat modules: every module of ``utils`` lives in core, services or a lesson."""
    flat = sorted(p.name for p in UTILS.glob("*.py") if p.name != "__init__.py")
    assert flat == [], f"move into a subpackage: {flat}"
    assert {p.name for p in UTILS.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package):
    wrong = {
        str(path.relative_to(UTILS)): sorted(utils_imports(path) - ALLOWED[package])
        for path in sorted((UTILS / package).rglob("*.py"))
    }
    wrong = {k: v for k, v in wrong.items() if v}
    assert wrong == {}, f"{package} may import only {sorted(ALLOWED[package])}"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_declares_all(package):
    tree = ast.parse((UTILS / package / "__init__.py").read_text(encoding="utf-8"))
    assert any(
        isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets)
        for node in tree.body
    ), f"utils/{package}/__init__.py has no __all__"


def test_checker_catches_a_cross_lesson_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from utils.good_bad.mt_eval import chrf\nimport utils.core.settings\n")
    assert utils_imports(module) == {"good_bad", "core"}
