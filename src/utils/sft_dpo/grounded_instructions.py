"""Parsing and output grammars of notebook 02's Genstruct-style task.

The task itself (``GroundedInstruction``: a Spanish Jinja2 template, ``format_input`` and
``format_output``) is written in notebook 02, section 3.  This module holds what it calls:
:func:`parse_grounded_output` reads a reply robustly (a malformed reply does not crash the
run, it gets a ``parse_error`` that says why, so the notebook can count and drop it).

A small model rarely follows an output format on its own.  The course's llama.cpp server
can *force* one with a GBNF grammar (:data:`GROUNDED_GRAMMAR`); large models follow the
format from the prompt alone, and the parser is the same either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ANSWER_RULE = r"answer ::= [^\n\[\]<>]{8,200} [.!]"
#: GBNF grammar (llama.cpp) that forces the format above: one question, one answer.
GROUNDED_GRAMMAR = (
    r'root ::= "[[[Usuario]]] " question "\n[[[Asistente]]] " answer'
    "\n"
    r'question ::= [^\n\[\]<>?]{8,120} "?"'
    "\n" + _ANSWER_RULE + "\n"
)
#: GBNF grammar for a bare answer (one line, complete sentences): the closed-book candidates.
ANSWER_GRAMMAR = "root ::= answer\n" + _ANSWER_RULE + "\n"

_PARSE = re.compile(
    r"\[\[\[(?:Usuario|User)\]\]\]\s*(?P<user>.+?)\s*\[\[\[(?:Asistente|Assistant)\]\]\]\s*(?P<assistant>.+)",
    re.DOTALL | re.IGNORECASE,
)
_MARKER = re.compile(r"\[\[\[[^\]]*\]\]\]")
_PLACEHOLDER = re.compile(r"^<[^>]*>$")
MIN_CHARS = 8


@dataclass(frozen=True)
class ParsedTurn:
    """One parsed reply: the instruction and answer, or ``error`` saying what was wrong."""

    instruction: str | None
    response: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_grounded_output(text: str | None) -> ParsedTurn:
    """Parse ``[[[Usuario]]] … [[[Asistente]]] …`` (Genstruct's English markers also work).

    Errors (never exceptions): ``no_output`` (the LLM call failed), ``no_format`` (markers
    missing), ``empty`` (a part is missing or a bare ``<placeholder>``), ``truncated`` (the
    answer stops mid-sentence: the token budget ran out), ``echo`` (the answer repeats the
    question).
    """
    if text is None or not text.strip():
        return ParsedTurn(None, None, "no_output")
    match = _PARSE.search(text)
    if not match:
        return ParsedTurn(None, None, "no_format")
    user = _MARKER.split(match.group("user"))[0].strip()
    assistant = _MARKER.split(match.group("assistant"))[0].strip()
    if (
        len(user) < MIN_CHARS
        or len(assistant) < MIN_CHARS
        or _PLACEHOLDER.match(user)
        or _PLACEHOLDER.match(assistant)
    ):
        return ParsedTurn(None, None, "empty")
    if assistant[-1] not in ".!?…)»\"'":
        return ParsedTurn(None, None, "truncated")
    if assistant.casefold() == user.casefold():
        return ParsedTurn(None, None, "echo")
    return ParsedTurn(user, assistant)
