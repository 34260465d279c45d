"""Static checks of the full profile: are the keyword arguments we pass still accepted?

The full profile (GPU, Hub) cannot run on the course's CPU machines, so its code is kept
to the same calls as mini with other values, and these helpers check those calls against
the *installed* (pinned) libraries without running them: every ``name(keyword=...)`` whose
callee can be resolved from the imports is compared with ``inspect.signature``.  A library
upgrade that renames an argument (``max_seq_length`` → ``max_length``) fails a test
instead of a learner's Colab session.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class KwargProblem:
    """A keyword argument that the installed library does not accept."""

    where: str
    call: str
    keyword: str

    def __str__(self) -> str:
        return f"{self.where}: {self.call}(… {self.keyword}=…) is not accepted by the installed version"


def _without_magics(source: str) -> str:
    """Turn IPython magics (``%pip``, ``!git``) into ``pass`` at their indentation, so notebook
    cells parse as Python (a block whose body is only magics stays a valid block)."""
    lines = []
    for line in source.splitlines():
        stripped = line.lstrip()
        lines.append(line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("%", "!")) else line)
    return "\n".join(lines)


def parse_code(source: str) -> ast.Module:
    """Parse notebook code (IPython magics blanked out) as a Python module."""
    return ast.parse(_without_magics(source))


def code_cells(path: Path) -> list[tuple[int, str]]:
    """``(cell index, source)`` of every code cell of notebook ``path``."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


def call_keywords(source: str) -> list[tuple[str, list[str], int]]:
    """``(dotted callee name, keyword names, line)`` of every call in Python ``source``."""
    calls = []
    for node in ast.walk(parse_code(source)):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name:
                calls.append((name, [k.arg for k in node.keywords if k.arg is not None], node.lineno))
    return calls


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def accepted_keywords(target: Callable[..., Any]) -> set[str] | None:
    """Keyword names ``target`` accepts, or None when it takes ``**kwargs`` or has no signature."""
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def unknown_keywords(source: str, targets: Mapping[str, Callable[..., Any]], *, where: str) -> list[KwargProblem]:
    """Keyword arguments in ``source`` that the callables in ``targets`` would reject.

    ``targets`` maps the name used in the code (``"SFTConfig"``, ``"trainer.save_model"``…)
    to the installed callable.
    """
    problems = []
    for name, keywords, line in call_keywords(source):
        if name not in targets:
            continue
        accepted = accepted_keywords(targets[name])
        if accepted is None:
            continue
        problems += [KwargProblem(f"{where}:{line}", name, k) for k in keywords if k not in accepted]
    return problems


# --------------------------------------------------------------------------- whole notebooks


def imported_names(source: str, roots: Iterable[str]) -> dict[str, Any]:
    """Objects bound by the ``import`` statements of ``source`` whose module starts with one of ``roots``.

    ``from peft import LoraConfig`` → ``{"LoraConfig": peft.LoraConfig}``;
    ``import torch`` → ``{"torch": torch}``.  Names that fail to import are skipped.
    """
    roots = tuple(roots)
    wanted = lambda module: module.split(".")[0] in roots
    names: dict[str, Any] = {}
    for node in ast.walk(parse_code(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and wanted(node.module):
            try:
                module = importlib.import_module(node.module)
            except ImportError:
                continue
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if wanted(alias.name):
                    try:
                        module = importlib.import_module(alias.name)
                    except ImportError:
                        continue
                    names[alias.asname or alias.name.split(".")[0]] = (
                        module if alias.asname else importlib.import_module(alias.name.split(".")[0])
                    )
    return names


def _resolve(dotted: str, names: Mapping[str, Any]) -> Any:
    head, *rest = dotted.split(".")
    obj = names.get(head)
    for attr in rest:
        if obj is None:
            return None
        obj = getattr(obj, attr, None)
    return obj if callable(obj) else None


#: Methods reached through an instance the notebook builds (``client = OpenAI(...)``), which the
#: import table cannot resolve: ``(class, dotted path after the instance) -> callable``.
INSTANCE_METHODS = {
    ("openai.OpenAI", "chat.completions.create"): "openai.resources.chat.completions:Completions.create",
}


def _instances(source: str, names: Mapping[str, Any]) -> dict[str, str]:
    """``{variable: "package.Class"}`` for assignments ``variable = Class(...)`` of imported classes."""
    found = {}
    for node in ast.walk(parse_code(source)):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            cls = _resolve(ast.unparse(node.value.func), names)
            if isinstance(cls, type):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = f"{cls.__module__.split('.')[0]}.{cls.__name__}"
    return found


def _resolve_instance_method(dotted: str, instances: Mapping[str, str]) -> Any:
    head, _, rest = dotted.partition(".")
    target = INSTANCE_METHODS.get((instances.get(head, ""), rest))
    if target is None:
        return None
    module, _, attrs = target.partition(":")
    obj = importlib.import_module(module)
    for attr in attrs.split("."):
        obj = getattr(obj, attr)
    return obj


def notebook_keyword_problems(path: Path, roots: Iterable[str]) -> tuple[list[KwargProblem], int]:
    """Check every call in notebook ``path`` whose callee is imported from ``roots``.

    Returns the problems and how many calls were checked (so a test can make sure the
    check did look at something).
    """
    code = code_cells(path)
    names = imported_names("\n".join(src for _, src in code), roots)
    instances = _instances("\n".join(src for _, src in code), names)
    problems: list[KwargProblem] = []
    checked = 0
    for index, source in code:
        for name, keywords, line in call_keywords(source):
            target = _resolve(name, names) or _resolve_instance_method(name, instances)
            if target is None or not keywords:
                continue
            accepted = accepted_keywords(target)
            if accepted is None:
                continue
            checked += 1
            problems += [
                KwargProblem(f"{path.name} cell {index}:{line}", name, k) for k in keywords if k not in accepted
            ]
    return problems, checked
