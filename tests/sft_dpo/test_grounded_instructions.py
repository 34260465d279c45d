"""The Genstruct-style task: prompt rendering, robust parsing, malformed replies counted.

``GroundedInstruction`` and its template are notebook 02's own cells (section 3), run by
:func:`nb02_fixtures.notebook_cells`; the parser and the grammar are in ``utils``.
"""

from __future__ import annotations

import pytest
from nb02_fixtures import llm_endpoint, notebook_cells  # noqa: F401 (fixture)
from scripted_llm import ScriptedLLM

from utils.sft_dpo.grounded_instructions import GROUNDED_GRAMMAR, parse_grounded_output

CELLS = notebook_cells("mini")
GroundedInstruction, GROUNDED_TEMPLATE = CELLS.GroundedInstruction, CELLS.TEMPLATE

ROW = {"title": "  Alhambra ", "content": "La Alhambra está en Granada.\n", "article_id": "a1"}
GOOD = "[[[Usuario]]] ¿Dónde está la Alhambra?\n[[[Asistente]]] La Alhambra está en Granada."


def test_prompt_renders_title_and_content_in_spanish():
    task = GroundedInstruction(llm=ScriptedLLM(replies=[GOOD]))
    task.load()
    messages = task.format_input(ROW)
    assert [m["role"] for m in messages] == ["user"]
    prompt = messages[0]["content"]
    assert prompt.startswith("[[[Título]]] Alhambra\n[[[Contenido]]] La Alhambra está en Granada.\n")
    assert "en español" in prompt and prompt.rstrip().endswith("[[[Asistente]]] <respuesta del asistente>")
    assert "{{" not in prompt  # every placeholder was filled
    assert task.inputs == ["title", "content"]
    assert "{{ title" in GROUNDED_TEMPLATE and "{{ content" in GROUNDED_TEMPLATE


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (GOOD, None),
        ("[[[User]]] ¿Dónde está la Alhambra?\n[[[Assistant]]] Está en Granada, España.", None),  # Genstruct's markers
        (GOOD + "\n[[[Usuario]]] ¿Y otra cosa?", None),  # a second turn is cut off
        (None, "no_output"),
        ("   ", "no_output"),
        ("Claro, aquí tienes una pregunta sobre el texto.", "no_format"),
        ("[[[Usuario]]] ¿Dónde está la Alhambra?", "no_format"),
        ("[[[Usuario]]] <pregunta del usuario>\n[[[Asistente]]] <respuesta del asistente>", "empty"),
        ("[[[Usuario]]] ¿Dónde?\n[[[Asistente]]] En Granada.", "empty"),
        ("[[[Usuario]]] ¿Dónde está la Alhambra?\n[[[Asistente]]] La Alhambra está en la ciudad de", "truncated"),
        ("[[[Usuario]]] Háblame de la Alhambra.\n[[[Asistente]]] Háblame de la Alhambra.", "echo"),
    ],
)
def test_parser_reports_why_instead_of_raising(reply, error):
    parsed = parse_grounded_output(reply)
    assert parsed.error == error
    assert parsed.ok is (error is None)
    if parsed.ok:
        assert parsed.instruction.startswith("¿Dónde") and "[[[" not in parsed.response
    else:
        assert parsed.instruction is None and parsed.response is None


def test_malformed_replies_are_rows_with_parse_error_not_crashes():
    replies = [GOOD, "sin formato", None, "[[[Usuario]]] ¿Qué es?\n[[[Asistente]]] Es una cosa que se"]
    task = GroundedInstruction(llm=ScriptedLLM(replies=replies))
    task.load()
    rows = next(task.process([dict(ROW, article_id=str(i)) for i in range(4)]))
    assert [r["parse_error"] for r in rows] == [None, "no_format", "no_output", "truncated"]
    assert rows[0]["conversation"] == [
        {"role": "user", "content": "¿Dónde está la Alhambra?"},
        {"role": "assistant", "content": "La Alhambra está en Granada."},
    ]
    assert all(r["conversation"] is None for r in rows[1:])
    assert [r["article_id"] for r in rows] == ["0", "1", "2", "3"]  # input columns pass through


def test_grammar_forces_a_parsable_reply_on_the_real_server(llm_endpoint):
    """SmolLM2 on the course's llama.cpp server, constrained by the GBNF grammar, parses."""
    from openai import OpenAI

    client = OpenAI(base_url=llm_endpoint.base_url, api_key=llm_endpoint.api_key)
    task = GroundedInstruction(llm=ScriptedLLM(replies=[GOOD]))
    task.load()
    reply = client.chat.completions.create(
        model=llm_endpoint.model,
        messages=task.format_input(ROW),
        max_tokens=256,
        temperature=0.7,
        extra_body={"grammar": GROUNDED_GRAMMAR, "seed": 1},
    )
    text = reply.choices[0].message.content
    parsed = parse_grounded_output(text)
    assert parsed.ok, (parsed.error, text)
    assert parsed.instruction.endswith("?")
