"""Notebook 01's exercise checks fail on the stub and on typical wrong answers, and pass on the solution.

Issue 12: before, an empty answer made the notebook check the reference solution and print «¡Bien hecho!».
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from utils.translate.exercise import check_bbox_pattern, check_chunk_bounds

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01_traducir_llava_instruct.ipynb"
PASSED = "¡Bien hecho!"


def _cell(tag: str, marker: str) -> str:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    found = [
        "".join(c["source"])
        for c in cells
        if tag in c.get("metadata", {}).get("tags", []) and marker in "".join(c["source"])
    ]
    assert len(found) == 1, (tag, marker)
    return found[0]


def _defined(tag: str, marker: str, name: str):
    """``name`` as the notebook cell tagged ``tag`` defines it (the check call in it is not run)."""
    source = "\n".join(line for line in _cell(tag, marker).splitlines() if not line.startswith("check_"))
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102 - the notebook's own cell
    return namespace[name]


# --------------------------------------------------------------------------- exercise 1 (guided)


def lose_the_remainder(n_rows, size):  # the bug the notebook shows: whole chunks only
    return [(i * size, (i + 1) * size) for i in range(n_rows // size)]


def one_chunk_too_many(n_rows, size):  # "+ 1" to catch the remainder: past the end, or an empty chunk
    return [(i * size, (i + 1) * size) for i in range(n_rows // size + 1)]


def overlapping(n_rows, size):  # steps of size - 1: every boundary row twice
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, max(size - 1, 1))]


@pytest.mark.parametrize(
    "answer, why",
    [
        (_defined("exercise", "def chunk_bounds", "chunk_bounds"), "esqueleto"),
        (lose_the_remainder, "faltan filas"),
        (one_chunk_too_many, "inexistentes"),
        (overlapping, "repetidas"),
        (lambda n_rows, size: None, "return"),
        (lambda n_rows, size: n_rows // size, "pares"),
    ],
)
def test_chunk_check_fails_on_the_stub_and_wrong_answers(answer, why, capsys):
    assert check_chunk_bounds(answer) is False
    out = capsys.readouterr().out
    assert PASSED not in out and "❌" in out and why in out


def test_chunk_check_passes_on_the_notebook_solution(capsys):
    solution = _defined("solution", "def chunk_bounds", "chunk_bounds")
    assert check_chunk_bounds(solution) is True
    assert PASSED in capsys.readouterr().out


def test_the_stub_really_is_a_stub():
    with pytest.raises(NotImplementedError):
        _defined("exercise", "def chunk_bounds", "chunk_bounds")(25, 10)


# --------------------------------------------------------------------------- exercise 2 (open)

NUMBER = r"\d+(?:\.\d+)?"


@pytest.mark.parametrize(
    "pattern, why",
    [
        (_defined("exercise", "BOX_PATTERN", "BOX_PATTERN"), "aún es None"),
        (r"\[.*\]", "otros corchetes"),  # greedy: any brackets, and two boxes become one span
        (r"\d+\.\d+", "caja completa"),  # the numbers only: what the default rules already do
        (r"\[\d\.\d+, \d\.\d+, \d\.\d+, \d\.\d+\]", "con y sin espacios"),  # decimals and ", " only
        (r"\[\d*\]?", "texto vacío"),
        (r"\[[\d.,\s]+\]", "otros corchetes"),  # also a list of three numbers
        ("", "texto vacío"),
        ("[", "expresión regular válida"),
    ],
)
def test_box_check_fails_on_the_stub_and_wrong_answers(pattern, why, capsys):
    assert check_bbox_pattern(pattern) is False
    out = capsys.readouterr().out
    assert PASSED not in out and "❌" in out and why in out


def test_box_check_passes_on_the_notebook_solution_and_another_correct_answer(capsys):
    assert check_bbox_pattern(_defined("solution", "BOX_PATTERN", "BOX_PATTERN")) is True
    assert check_bbox_pattern(rf"\[{NUMBER}(?:, ?{NUMBER}){{3}}\]") is True  # an open exercise: not one answer
    assert capsys.readouterr().out.count(PASSED) == 2
