"""Notebook 04's exercises: each check fails on the stub and on two typical wrong answers,
and passes on the notebook's own solution (issue 12)."""

from __future__ import annotations

from collections import Counter

import nbformat
import pytest
from nb04_cells import NOTEBOOK

from utils.llava_vqa.llava_model import check_image_token_formula
from utils.llava_vqa.vqa_data import check_frequent_errors, normalize_answer


def cell_function(tag: str, name: str, namespace: dict | None = None):
    """The function ``name`` as the notebook's cell tagged ``tag`` defines it (stub or solution)."""
    ns = {"Counter": Counter, "normalize_answer": normalize_answer, **(namespace or {})}
    cells = [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if tag in c.metadata.get("tags", [])]
    for cell in cells:
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("check_"))
        source = "\n".join(line for line in source.splitlines() if not line.startswith("print("))
        local = dict(ns)
        exec(source, local)  # noqa: S102 - the course's own notebook
        if name in local:
            return local[name]
    raise LookupError(name)


def passes(check, function, capsys) -> tuple[bool, str]:
    ok = check(function)
    out = capsys.readouterr().out
    assert "Traceback" not in out
    return ok, out


# --------------------------------------------------------------------------- exercise 1


def formula_wrong_cls(image_size, patch_size, strategy):  # CLS always added
    return (image_size // patch_size) ** 2 + 1


def formula_wrong_not_squared(image_size, patch_size, strategy):  # patches per side only
    return image_size // patch_size + (1 if strategy == "full" else 0)


def test_token_formula_check_fails_on_the_stub_and_on_wrong_answers(capsys):
    ok, out = passes(check_image_token_formula, cell_function("exercise", "tokens_de_imagen"), capsys)
    assert not ok and "esqueleto" in out and "¡Bien hecho!" not in out
    for wrong in (formula_wrong_cls, formula_wrong_not_squared):
        ok, out = passes(check_image_token_formula, wrong, capsys)
        assert not ok and "❌" in out and "pista" in out


def test_token_formula_check_passes_on_the_solution(capsys):
    ok, out = passes(check_image_token_formula, cell_function("solution", "tokens_de_imagen"), capsys)
    assert ok and "¡Bien hecho!" in out


# --------------------------------------------------------------------------- exercise 2


def errors_all_types(references, predictions, qtypes, qtype, top=3):  # forgets to filter by qtype
    pairs = Counter(
        (normalize_answer(r), normalize_answer(p))
        for r, p in zip(references, predictions)
        if normalize_answer(r) != normalize_answer(p)
    )
    return pairs.most_common(top)


def errors_not_normalized(references, predictions, qtypes, qtype, top=3):  # compares raw strings
    pairs = Counter((r, p) for r, p, t in zip(references, predictions, qtypes) if t == qtype and r != p)
    return pairs.most_common(top)


def errors_dict(references, predictions, qtypes, qtype, top=3):  # returns a dict, not a ranked list
    return dict(errors_not_normalized(references, predictions, qtypes, qtype, top))


@pytest.mark.parametrize("wrong", [errors_all_types, errors_not_normalized, errors_dict])
def test_frequent_errors_check_fails_on_wrong_answers(wrong, capsys):
    ok, out = passes(check_frequent_errors, wrong, capsys)
    assert not ok and "❌" in out and "¡Bien hecho!" not in out


def test_frequent_errors_check_fails_on_the_stub(capsys):
    ok, out = passes(check_frequent_errors, cell_function("exercise", "errores_frecuentes"), capsys)
    assert not ok and "esqueleto" in out


def test_frequent_errors_check_passes_on_the_solution(capsys):
    ok, out = passes(check_frequent_errors, cell_function("solution", "errores_frecuentes"), capsys)
    assert ok and "¡Bien hecho!" in out
