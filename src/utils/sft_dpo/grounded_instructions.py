"""SFT data from documents: a Genstruct-style distilabel task, in Spanish (notebook 02).

`Genstruct <https://huggingface.co/NousResearch/Genstruct-7B>`_ turns a raw document (title
+ content) into an instruction a user could ask about it and an answer grounded in it.
:class:`GroundedInstruction` does the same with any chat model and a Spanish Jinja2
template (:data:`GROUNDED_TEMPLATE`), and parses the reply robustly: a malformed reply
does not crash the run, it gets ``instruction=None`` and a ``parse_error`` that says why,
so the notebook can count and drop it.

A small model rarely follows an output format on its own.  The course's llama.cpp server
can *force* one with a GBNF grammar (:data:`GROUNDED_GRAMMAR`); large models follow the
format from the prompt alone, and the parser is the same either way.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

from jinja2 import Template
from pydantic import PrivateAttr

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.steps.tasks import Task

#: The prompt.  Genstruct's layout ([[[Title]]], [[[Content]]], [[[User]]]…) in Spanish.
GROUNDED_TEMPLATE = """\
[[[Título]]] {{ title | trim }}
[[[Contenido]]] {{ content | trim }}

Lo que sigue es una conversación en español entre un usuario y un asistente de IA sobre el texto anterior.
El usuario hace una pregunta concreta que se puede responder con el texto.
El asistente responde en español, en una o dos frases completas, usando solo la información del texto.
Escribe la conversación con este formato exacto:
[[[Usuario]]] <pregunta del usuario>
[[[Asistente]]] <respuesta del asistente>"""

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


def conversation(instruction: str, response: str) -> list[dict[str, str]]:
    """The chat format SFT trainers expect: ``[{"role": "user", …}, {"role": "assistant", …}]``."""
    return [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]


class GroundedInstruction(Task):
    """Title + content → a user instruction and an answer grounded in the content.

    Input columns: ``title``, ``content``.  Output columns: ``instruction``, ``response``,
    ``conversation`` (``[{"role", "content"}]``), ``parse_error`` (``None`` when the reply
    parsed) and ``model_name``.
    """

    template: str = GROUNDED_TEMPLATE
    _template: Template | None = PrivateAttr(default=None)

    def load(self) -> None:
        super().load()
        self._template = Template(self.template)

    @property
    def inputs(self) -> list[str]:
        return ["title", "content"]

    @property
    def outputs(self) -> list[str]:
        return ["instruction", "response", "conversation", "parse_error", "model_name"]

    def format_input(self, input: dict[str, Any]) -> list[dict[str, str]]:
        if self._template is None:  # used before load(): render anyway
            self._template = Template(self.template)
        prompt = self._template.render(title=input["title"], content=input["content"])
        return [{"role": "user", "content": prompt}]

    def format_output(self, output: str | None, input: dict[str, Any] | None = None) -> dict[str, Any]:
        parsed = parse_grounded_output(output)
        return {
            "instruction": parsed.instruction,
            "response": parsed.response,
            "conversation": conversation(parsed.instruction, parsed.response) if parsed.ok else None,
            "parse_error": parsed.error,
        }
