"""Checks for SFT and DPO datasets before training on them (notebook 02).

The formats are the ones TRL's trainers read:

* SFT — a ``messages`` column: ``[{"role": "user", "content": …}, {"role": "assistant", …}]``
  (an optional leading ``system`` turn; user and assistant alternate; the last turn is the
  assistant's).
* DPO — ``prompt`` (the conversation up to the user's last turn), ``chosen`` and
  ``rejected`` (one assistant turn each), all in the same chat format.

:func:`check_sft_rows` / :func:`check_dpo_rows` return a list of :class:`Problem` (empty =
all good), saying which row and what is wrong.  :func:`report_dataset` prints them as the
exercise self-check does.  Language: every text must be Spanish, or too short to tell
(:func:`utils.core.language.is_language` returns ``None``); another language is a problem.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from utils.core.exercises import Expectation, report
from utils.core.language import detect_language

SFT_COLUMNS = ("messages",)
DPO_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one row (``row`` is ``None`` for the dataset as a whole)."""

    row: int | None
    what: str

    def __str__(self) -> str:
        where = "dataset" if self.row is None else f"row {self.row}"
        return f"{where}: {self.what}"


def _rows(dataset: Any) -> list[Mapping[str, Any]]:
    """Rows of a ``datasets.Dataset``, a list of dicts or a pandas DataFrame."""
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns") and not hasattr(dataset, "features"):
        return dataset.to_dict("records")  # pandas
    return list(dataset)


def _columns(dataset: Any, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    names = getattr(dataset, "column_names", None) or getattr(dataset, "columns", None)
    if names is not None:
        return set(names)
    return set(rows[0]) if rows else set()


def non_spanish(text: str) -> str | None:
    """The detected language when ``text`` is clearly not Spanish, else ``None``."""
    guess = detect_language(text)
    if guess.lang in ("und", "es"):
        return None
    return guess.lang


def check_turns(turns: Any, *, last: str, where: str) -> list[str]:
    """Problems of one chat list: shape, roles, alternation, empty text, language."""
    if not isinstance(turns, (list, tuple)) or not turns:
        return [f"{where} must be a non-empty list of {{'role', 'content'}} turns"]
    problems: list[str] = []
    roles = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping) or not {"role", "content"} <= set(turn):
            return [f"{where}[{i}] must be a dict with 'role' and 'content'"]
        roles.append(turn["role"])
        content = turn["content"]
        if not isinstance(content, str) or not content.strip():
            problems.append(f"{where}[{i}] ({turn['role']}) has empty content")
        elif (lang := non_spanish(content)) is not None:
            problems.append(f"{where}[{i}] ({turn['role']}) is not Spanish (detected {lang!r})")
    body = roles[1:] if roles[0] == "system" else roles
    if not body:
        problems.append(f"{where} has no user/assistant turn")
    elif any(r not in ("user", "assistant") for r in body) or any(a == b for a, b in itertools.pairwise(body)):
        problems.append(f"{where} roles {roles} do not alternate user/assistant")
    elif len(body) > 1 and body[0] != "user":
        problems.append(f"{where} must start with a 'user' turn, starts with {body[0]!r}")
    elif body[-1] != last:
        problems.append(f"{where} must end with a {last!r} turn, ends with {body[-1]!r}")
    return problems


def _check(dataset: Any, columns: Sequence[str], check_row: Callable[[Mapping[str, Any]], list[str]]) -> list[Problem]:
    rows = _rows(dataset)
    if not rows:
        return [Problem(None, "the dataset is empty")]
    missing = [c for c in columns if c not in _columns(dataset, rows)]
    if missing:
        return [Problem(None, f"missing column(s) {missing}; expected {list(columns)}")]
    return [Problem(i, what) for i, row in enumerate(rows) for what in check_row(row)]


def check_sft_rows(dataset: Any) -> list[Problem]:
    """Problems of an SFT dataset (``messages`` column); empty when it is fine."""
    return _check(dataset, SFT_COLUMNS, lambda row: check_turns(row["messages"], last="assistant", where="messages"))


def _dpo_row(row: Mapping[str, Any]) -> list[str]:
    problems = check_turns(row["prompt"], last="user", where="prompt")
    for column in ("chosen", "rejected"):
        turns = row[column]
        problems += check_turns(turns, last="assistant", where=column)
        if isinstance(turns, (list, tuple)) and len(turns) != 1:
            problems.append(f"{column} must hold exactly one assistant turn, has {len(turns)}")
    chosen, rejected = row["chosen"], row["rejected"]
    if chosen and rejected and _text(chosen).strip().casefold() == _text(rejected).strip().casefold():
        problems.append("chosen and rejected are the same answer")
    return problems


def _text(turns: Any) -> str:
    if isinstance(turns, (list, tuple)):
        return " ".join(str(t.get("content", "")) for t in turns if isinstance(t, Mapping))
    return str(turns)


def check_dpo_rows(dataset: Any) -> list[Problem]:
    """Problems of a DPO dataset (``prompt``/``chosen``/``rejected``); empty when it is fine."""
    return _check(dataset, DPO_COLUMNS, _dpo_row)


def as_dataset(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]):
    """A ``datasets.Dataset`` from ``rows``; with the given columns even when there are none."""
    from datasets import Dataset

    if rows:
        return Dataset.from_list(list(rows))
    return Dataset.from_dict({column: [] for column in columns})


def report_dataset(kind: str, dataset: Any, *, show: int = 5) -> bool:
    """Print a ✅/❌ report of an ``"sft"`` or ``"dpo"`` dataset; return True if it passes."""
    checker = {"sft": check_sft_rows, "dpo": check_dpo_rows}[kind]
    problems = checker(dataset)
    n = len(_rows(dataset))
    items = [Expectation(not problems, f"{n} filas {kind.upper()} con el formato de TRL, sin textos vacíos y en español",
                         f"{len(problems)} problema(s)")]  # fmt: skip
    items += [Expectation(False, str(p)) for p in problems[:show]]
    if len(problems) > show:
        items.append(Expectation(False, f"… y {len(problems) - show} más"))
    return report(f"dataset {kind.upper()}", items)


def spanish_split(rows: Iterable[Mapping[str, Any]], fields: Sequence[str]) -> tuple[list, list]:
    """Split ``rows`` into (Spanish, not Spanish) by the text in ``fields`` (str or list of str)."""
    keep, leak = [], []
    for row in rows:
        texts: list[str] = []
        for name in fields:
            value = row.get(name)
            texts += value if isinstance(value, list) else [value]
        bad = [t for t in texts if not isinstance(t, str) or non_spanish(t) is not None]
        (leak if bad else keep).append(row)
    return keep, leak
