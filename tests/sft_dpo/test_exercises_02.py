"""Notebook 02's exercise checks fail on the stub and on typical wrong answers, and pass the solution.

The stubs and the solutions are read from the notebook itself (cells tagged ``exercise`` and
``solution``), so these tests follow the notebook as it is.
"""

from __future__ import annotations

import warnings

import nbformat
import pytest
from nb02_fixtures import NOTEBOOK

from utils.sft_dpo.exercise_checks import check_grounded_step, check_preference_pair
from utils.sft_dpo.simulated_review import overlap

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from distilabel.steps import StepInput, step


def _cells(tag: str) -> list[str]:
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    return [c.source for c in cells if tag in c.metadata.get("tags", [])]


def _define(source: str, name: str):
    """``name`` as the cell defines it (the cell's check call is left out)."""
    namespace = {"step": step, "StepInput": StepInput}
    body = "\n".join(line for line in source.splitlines() if not line.startswith("check_"))
    exec(compile(body, "<notebook 02>", "exec", dont_inherit=True), namespace)  # noqa: S102 - the notebook's own cell
    return namespace[name]


def _verdict(capsys, check, answer) -> tuple[bool, str]:
    passed = check(answer)
    return passed, capsys.readouterr().out


# ---------------------------------------------------------------- exercise 1: preference_pair


def _pair(chosen, rejected, instruction):
    return {
        "prompt": [{"role": "user", "content": instruction}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def wrong_pair_ignores_ties(instruction, generations, ratings):
    """Typical mistake: always pairs best and worst, even on ties or missing ratings."""
    known = [r if r is not None else 0 for r in ratings]
    best, worst = known.index(max(known)), known.index(min(known))
    return _pair(generations[best], generations[worst], instruction)


def wrong_pair_swapped(instruction, generations, ratings):
    """Typical mistake: min and max swapped (chosen is the worst)."""
    if any(r is None for r in ratings) or len(set(ratings)) == 1:
        return None
    return _pair(generations[ratings.index(min(ratings))], generations[ratings.index(max(ratings))], instruction)


def wrong_pair_plain_strings(instruction, generations, ratings):
    """Typical mistake: plain strings instead of TRL's chat turns."""
    if any(r is None for r in ratings) or len(set(ratings)) == 1:
        return None
    return {"prompt": instruction, "chosen": generations[ratings.index(max(ratings))],
            "rejected": generations[ratings.index(min(ratings))]}  # fmt: skip


def test_preference_pair_stub_fails_with_a_spanish_hint(capsys):
    stub = _define(_cells("exercise")[0], "preference_pair")
    passed, out = _verdict(capsys, check_preference_pair, stub)
    assert not passed and "esqueleto" in out and "Aún no" in out


@pytest.mark.parametrize("wrong", [wrong_pair_ignores_ties, wrong_pair_swapped, wrong_pair_plain_strings])
def test_preference_pair_typical_wrong_answers_fail(capsys, wrong):
    passed, out = _verdict(capsys, check_preference_pair, wrong)
    assert not passed and "❌" in out and "¡Bien hecho!" not in out


def test_preference_pair_solution_passes(capsys):
    solution = _define(_cells("solution")[0], "preference_pair")
    passed, out = _verdict(capsys, check_preference_pair, solution)
    assert passed and "¡Bien hecho!" in out


# ---------------------------------------------------------------- exercise 2: KeepGrounded


@step(inputs=["instruction", "response", "content"])
def KeepEverything(inputs: StepInput):
    """Typical mistake: a filter that filters nothing."""
    yield inputs


@step(inputs=["instruction", "response", "content"])
def KeepLongEnough(inputs: StepInput):
    """Typical mistake: length only, so an off-topic (or echoed) answer passes."""
    yield [row for row in inputs if len(row["response"]) >= 20]


@step(inputs=["instruction", "response", "content"])
def KeepGroundedButStrips(inputs: StepInput):
    """Typical mistake: the right rule, but the rows lose their other columns."""
    yield [{"response": row["response"]} for row in inputs if row["response"] and overlap(row["response"], row["content"]) >= 0.5
           and row["response"] != row["instruction"]]  # fmt: skip


def test_grounded_step_stub_fails_with_a_spanish_hint(capsys):
    stub = _define(_cells("exercise")[1], "KeepGrounded")
    passed, out = _verdict(capsys, check_grounded_step, stub)
    assert not passed and "esqueleto" in out


@pytest.mark.parametrize("wrong", [KeepEverything, KeepLongEnough, KeepGroundedButStrips])
def test_grounded_step_typical_wrong_answers_fail(capsys, wrong):
    passed, out = _verdict(capsys, check_grounded_step, wrong)
    assert not passed and "❌" in out


def test_grounded_step_solution_passes(capsys):
    solution = _define(_cells("solution")[1], "KeepGrounded")
    passed, out = _verdict(capsys, check_grounded_step, solution)
    assert passed and "¡Bien hecho!" in out
