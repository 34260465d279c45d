"""Notebook 05's exercise checks: each fails on the notebook's stub and on typical wrong
answers, and passes on the notebook's own (collapsed) solution."""

from __future__ import annotations

import ast
import dataclasses
from typing import Literal

import nbformat
import pytest
from pydantic import BaseModel, Field

from utils.core.paths import notebooks_dir
from utils.prompting.prompt_exercises import check_booking_model, check_summary_prompt, is_delimited

NOTEBOOK = notebooks_dir() / "05_prompting_llm_local.ipynb"


def notebook_definitions(tag: str, name: str) -> object:
    """``name`` as the notebook's cell tagged ``tag`` defines it (only its definitions run:
    no server is needed)."""
    cell = next(
        c
        for c in nbformat.read(NOTEBOOK, as_version=4).cells
        if tag in c.metadata.get("tags", []) and name in c.source
    )
    tree = ast.parse(cell.source)
    tree.body = [
        n
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.ClassDef)
        or (isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant))
    ]
    namespace = {"Literal": Literal, "BaseModel": BaseModel, "Field": Field}
    exec(compile(tree, NOTEBOOK.name, "exec", dont_inherit=True), namespace)  # noqa: S102 - the notebook's own cell
    return namespace[name]


# --------------------------------------------------------------------------- exercise 1 (guided)


def test_summary_check_fails_on_the_stub(capsys):
    stub = notebook_definitions("exercise", "summary_prompt")
    assert check_summary_prompt(stub) is False
    out = capsys.readouterr().out
    assert "esqueleto" in out and "Aún no" in out and "¡Bien hecho!" not in out


@pytest.mark.parametrize(
    "wrong",
    [
        lambda r, n, a: f"Resume en {n} palabras sobre {a}: {r}",  # no delimiters
        lambda r, n, a: f"Resume sobre {a}:\n<resena>{r}</resena>",  # no word limit
        lambda r, n, a: f"Resume en {n} palabras:\n<resena>{r}</resena>",  # no aspect
        lambda r, n, a: "Resume en 25 palabras el envío:\n<resena>texto</resena>",  # hard-coded
        lambda r, n, a: 1 / 0,  # crashes
        lambda r, n, a: None,  # forgot the return
    ],
    ids=["sin-delimitadores", "sin-limite", "sin-aspecto", "fijo", "falla", "sin-return"],
)
def test_summary_check_fails_on_typical_wrong_answers(wrong, capsys):
    assert check_summary_prompt(wrong) is False
    assert "Aún no" in capsys.readouterr().out


def test_summary_check_passes_on_the_notebook_solution(capsys):
    solution = notebook_definitions("solution", "summary_prompt")
    assert check_summary_prompt(solution) is True
    assert "¡Bien hecho!" in capsys.readouterr().out


def test_is_delimited():
    assert is_delimited('Texto: """hola"""', "hola")
    assert is_delimited("<r>\nhola\n</r>", "hola")
    assert not is_delimited("Resume: hola.", "hola") and not is_delimited("nada", "hola")


# --------------------------------------------------------------------------- exercise 2 (open)

Day = Literal["lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"]


class NoRules(BaseModel):  # the fields, with no constraint at all
    name: str
    people: int
    day: str
    time: str


class NoTimeRule(BaseModel):  # people and day right, time any text
    name: str = Field(min_length=1)
    people: int = Field(ge=1, le=12)
    day: Day
    time: str


class TooStrict(BaseModel):  # refuses a valid booking of 12 people
    name: str = Field(min_length=1)
    people: int = Field(ge=1, le=10)
    day: Day
    time: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class LooseHour(BaseModel):  # \d\d:\d\d lets 25:00 and 21:60 through
    name: str = Field(min_length=1)
    people: int = Field(ge=1, le=12)
    day: Day
    time: str = Field(pattern=r"^\d\d:\d\d$")


@dataclasses.dataclass
class NotPydantic:
    name: str
    people: int
    day: str
    time: str


def test_booking_check_fails_on_the_stub(capsys):
    stub = notebook_definitions("exercise", "Booking")
    assert stub is None
    assert check_booking_model(stub) is False
    out = capsys.readouterr().out
    assert "esqueleto" in out and "Aún no" in out


@pytest.mark.parametrize(
    "wrong, what",
    [
        (NoRules, "`people` solo acepta"),
        (NoTimeRule, "`time` solo acepta"),
        (LooseHour, "`time` solo acepta"),
        (TooStrict, "acepta reservas correctas"),
        (NotPydantic, "modelo de pydantic"),
        (None, "esqueleto"),
    ],
    ids=["sin-reglas", "hora-libre", "hora-laxa", "demasiado-estricta", "dataclass", "none"],
)
def test_booking_check_fails_on_typical_wrong_answers(wrong, what, capsys):
    assert check_booking_model(wrong) is False
    out = capsys.readouterr().out
    assert f"❌ {what}" in out or what in out
    assert "Aún no" in out


class Unfinished(BaseModel):  # a forward reference never defined: pydantic cannot build it
    name: "Nombre"  # noqa: F821, UP037
    people: int
    day: Day
    time: str


def test_booking_check_reports_a_model_pydantic_cannot_build(capsys):
    assert check_booking_model(Unfinished) is False
    assert "no se puede usar" in capsys.readouterr().out


def test_booking_check_passes_on_the_notebook_solution(capsys):
    solution = notebook_definitions("solution", "Booking")
    assert check_booking_model(solution) is True
    assert "¡Bien hecho!" in capsys.readouterr().out
