"""How every notebook teaches (issue 12): exercises the learner does, and no bookkeeping in the lesson.

Conventions (README §Cómo están hechos los cuadernos):

* An exercise is a markdown cell naming it («Ejercicio … (guiado)» or «(abierto)»), then a code cell
  tagged ``exercise`` holding the stub (``raise NotImplementedError`` or ``= None``), a cell tagged
  ``check`` that calls a ``check_*`` function (it prints, in Spanish, what is missing; it never
  raises), and a collapsed cell tagged ``solution`` (``# @title`` first line; Colab's form view and
  Jupyter's hidden source) that solves it and runs the check again.
* No name the stub defines is used in a code cell before the stub (the answer is not given away).
* Each ``check_*`` used in a notebook is exercised by a test under ``tests/`` that feeds it wrong answers.
* ``nb.results.record`` appears only in cells tagged ``results`` (one clearly marked cell per section).
"""

import ast
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LEVEL = re.compile(r"ejercicio[^\n]*\((guiado|abierto)\)", re.IGNORECASE)


def cells(path):
    return nbformat.read(path, as_version=4).cells


def tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def defined_names(source: str) -> set[str]:
    tree = ast.parse(re.sub(r"^(\s*)[!%].*$", r"\1pass", source, flags=re.MULTILINE))  # magics: keep blocks valid
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def used_names(source: str) -> set[str]:
    tree = ast.parse(re.sub(r"^(\s*)[!%].*$", r"\1pass", source, flags=re.MULTILINE))  # magics: keep blocks valid
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    used |= {
        a.asname or a.name.split(".")[-1] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    }
    return used


def exercises(path):
    """(level, stub index, check cell, solution cell) for each exercise of the notebook."""
    all_cells = cells(path)
    found = []
    for i, cell in enumerate(all_cells):
        if "exercise" not in tags(cell):
            continue
        before = [c for c in all_cells[:i] if c.cell_type == "markdown"]
        level = LEVEL.search(before[-1].source) if before else None
        after = all_cells[i + 1 :]
        nxt = next((j for j, c in enumerate(after) if "exercise" in tags(c)), len(after))
        window = after[:nxt]
        check = next((c for c in window if "check" in tags(c)), None)
        solution = next((c for c in window if "solution" in tags(c)), None)
        found.append((level.group(1).lower() if level else None, i, check, solution))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_two_exercises_at_two_levels(path):
    found = exercises(path)
    assert len(found) >= 2, f"{path.name}: {len(found)} ejercicios con la etiqueta `exercise`; hacen falta 2"
    levels = {level for level, *_ in found}
    assert {"guiado", "abierto"} <= levels, f"{path.name}: niveles {levels}; hace falta uno guiado y uno abierto"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_exercise_is_stub_check_and_collapsed_solution(path):
    all_cells = cells(path)
    for level, i, check, solution in exercises(path):
        stub = all_cells[i].source
        assert "raise NotImplementedError" in stub or re.search(r"=\s*None\b", stub), (
            f"{path.name} celda {i}: sin esqueleto"
        )
        assert check is not None and re.search(r"\bcheck_\w+\(", check.source), (
            f"{path.name} celda {i}: sin comprobación"
        )
        assert solution is not None, f"{path.name} celda {i}: sin solución"
        meta = solution.metadata
        assert solution.source.lstrip().startswith("# @title"), f"{path.name}: la solución empieza por `# @title`"
        assert meta.get("cellView") == "form" and meta.get("jupyter", {}).get("source_hidden") is True, (
            f"{path.name}: la solución debe estar plegada (cellView form, jupyter.source_hidden)"
        )
        assert re.search(r"\bcheck_\w+\(", solution.source), f"{path.name}: la solución vuelve a comprobar"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_answer_used_before_its_exercise(path):
    all_cells = cells(path)
    for _, i, _, _ in exercises(path):
        answer = defined_names(all_cells[i].source)
        earlier = set().union(*(used_names(c.source) for c in all_cells[:i] if c.cell_type == "code"))
        assert not answer & earlier, f"{path.name}: {sorted(answer & earlier)} se usa antes de su ejercicio"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_check_is_tested_with_wrong_answers(path):
    checks = {
        name
        for _, _, check, _ in exercises(path)
        if check is not None
        for name in re.findall(r"\b(check_\w+)\(", check.source)
    }
    tests = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name
    )
    untested = sorted(name for name in checks if name not in tests)
    assert untested == [], f"{path.name}: sin test que le dé respuestas erróneas: {untested}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_results_recorded_only_in_marked_cells(path):
    sprinkled = [
        i
        for i, c in enumerate(cells(path))
        if c.cell_type == "code" and "results.record" in c.source and "results" not in tags(c)
    ]
    assert sprinkled == [], (
        f"{path.name}: `nb.results.record` en celdas de la lección {sprinkled}; muévelo a una celda `results`"
    )


def test_the_structure_checks_catch_a_given_away_answer(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print(build_pair(1))"),
        nbformat.v4.new_markdown_cell("### Ejercicio 1 (guiado)"),
        nbformat.v4.new_code_cell(
            "def build_pair(x):\n    raise NotImplementedError", metadata={"tags": ["exercise"]}
        ),
        nbformat.v4.new_code_cell("check_pair(build_pair)", metadata={"tags": ["check"]}),
        nbformat.v4.new_code_cell("nb.results.record(a=1)"),
    ]
    path = tmp_path / "99_x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="build_pair"):
        test_no_answer_used_before_its_exercise(path)
    with pytest.raises(AssertionError, match="sin solución"):
        test_each_exercise_is_stub_check_and_collapsed_solution(path)
    with pytest.raises(AssertionError, match="results"):
        test_results_recorded_only_in_marked_cells(path)
