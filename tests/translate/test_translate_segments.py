"""Segmentation and protection (utils.translate.segments) and LLaVA row validation."""

from __future__ import annotations

import json
import re

import pytest

from utils.core.settings import get_settings
from utils.translate.records import Malformed, input_file, load_rows, translated_row, validate_row
from utils.translate.segments import (
    DEFAULT_RULES,
    IMAGE_TOKEN,
    ProtectionRules,
    segment_text,
    verify_translation,
)

MINI = input_file(get_settings("mini").translate)  # data/llava_instruct_mini.json

HOSTILE_VALUES = [
    "<image>\nWhat color is the bus?",
    "What is shown here?\n<image>",
    "Compare these. <image> Which one is older? <image>",  # <image> in the middle (twice)
    "<image><image>\n\n",
    'He said "she told me \'it\'s "fine"\' yesterday" and left.',  # nested quotes
    "Great shot 😀🎉! The fans are happy 👍🏽.",
    "",
    "   ",
    "\n",
    "No punctuation at all " * 250,  # ~5.5k characters, no sentence end
    "x" * 5000,  # one 5k-character token
    ("A long answer. " * 400).strip(),  # 6k characters of sentences
    "```python\nprint('unclosed fence')\n# and more",
    "Use `pip install x` then visit https://example.com/a_b?c=1. Mail me@example.org!",
    "1. First item\n2. Second item\n   - nested bullet with 3 numbers 4.5 and 6,000\n> quoted line",
    "| Color | Count |\n|---|---|\n| red | 3 |",
    "Windows line\r\nbreaks\rand old Mac ones.",
    "e.g. this is one sentence. Mr. Smith paid $3.50 at 9:00 a.m. on 3/4. Then he left.",
    "<b>bold</b> and <video> tags, **strong** and __under__ markup.",
    "Tabs\tinside\tand trailing spaces   ",
    "\u00bfQu\u00e9? Ya est\u00e1 en espa\u00f1ol \u00a1vaya!",
]


def _values_of_mini_data():
    for row in json.loads(MINI.read_text(encoding="utf-8")):
        turns = row.get("conversations") if isinstance(row, dict) else None
        for turn in turns if isinstance(turns, list) else []:
            if isinstance(turn, dict) and isinstance(turn.get("value"), str):
                yield turn["value"]


@pytest.mark.parametrize("value", HOSTILE_VALUES + list(_values_of_mini_data()))
def test_rendering_the_sources_gives_back_the_exact_value(value):
    template = segment_text(value)
    assert template.render([s.text for s in template.segments]) == value
    for segment in template.segments:
        assert "\n" not in segment.text and "\r" not in segment.text
        assert IMAGE_TOKEN not in segment.text
        assert segment.text == segment.text.strip()
        assert len(segment.text) <= DEFAULT_RULES.max_segment_chars
        assert "".join(piece for _, piece in segment.parts) == segment.text


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_whatever_the_translator_writes_the_skeleton_survives(value):
    """Replace every sentence by garbage: literals (tags, newlines, code, markers) stay put."""
    template = segment_text(value)
    garbage = template.render(["@" * (i % 3 + 1) for i in range(len(template.segments))])
    assert garbage.count(IMAGE_TOKEN) == value.count(IMAGE_TOKEN)
    assert garbage.count("\n") == value.count("\n")
    assert [p.strip() != "" for p in garbage.split(IMAGE_TOKEN)] == [p.strip() != "" for p in value.split(IMAGE_TOKEN)]
    for literal in template.literals():
        assert literal in garbage


def test_image_tag_position_is_kept_at_start_middle_and_end():
    value = "<image>\nLook. <image> Then answer.\n<image>"
    template = segment_text(value)
    out = template.render(["X" for _ in template.segments])
    assert out == "<image>\nX <image> X\n<image>"


def test_code_blocks_urls_inline_code_and_numbers_are_protected():
    value = (
        "Run this:\n```bash\nmogrify -resize 512x512 *.jpg\n```\n"
        "Then open https://example.com/docs, call `resize(512)` and wait 2.5 seconds."
    )
    template = segment_text(value)
    literals = "".join(template.literals())
    assert "```bash\nmogrify -resize 512x512 *.jpg\n```" in literals
    texts = [s.text for s in template.segments]
    assert texts == ["Run this:", "Then open https://example.com/docs, call `resize(512)` and wait 2.5 seconds."]
    assert template.segments[1].protected == ("https://example.com/docs", "`resize(512)`", "2.5")


def test_list_markers_and_indentation_are_literals():
    template = segment_text("1. First thing\n   - second thing\n## Title here")
    assert [s.text for s in template.segments] == ["First thing", "second thing", "Title here"]
    assert template.literals() == ["1. ", "\n   - ", "\n## "]


def test_sentences_are_split_but_not_at_abbreviations_or_decimals():
    template = segment_text("Mr. Smith paid 3.50 dollars, e.g. for bread. Then he left! Did he?")
    assert [s.text for s in template.segments] == [
        "Mr. Smith paid 3.50 dollars, e.g. for bread.",
        "Then he left!",
        "Did he?",
    ]


def test_long_sentences_are_cut_at_commas_or_spaces():
    value = ", ".join(f"item number {i} is here" for i in range(60)) + "."
    template = segment_text(value)
    assert len(template.segments) > 1
    assert all(len(s.text) <= 400 for s in template.segments)
    assert template.render([s.text for s in template.segments]) == value


def test_text_without_letters_is_not_sent_to_the_translator():
    for value in ("42", "3:2", "https://example.com", "`x = 1`", "😀", "- 12.5 %", "x" * 5000):
        assert segment_text(value).segments == (), value


def test_non_string_values_are_refused_not_stringified():
    for value in (None, 3, {"text": "hi"}, ["a"]):
        with pytest.raises(TypeError, match="never stringified"):
            segment_text(value)  # type: ignore[arg-type]


def test_custom_patterns_protect_a_whole_span():
    rules = ProtectionRules().with_patterns(r"\[\d+(?:\.\d+)?(?:,\s*\d+(?:\.\d+)?){3}\]")
    segment = segment_text("The dog [0.1, 0.2, 0.3, 0.4] sleeps.", rules).segments[0]
    assert segment.protected == ("[0.1, 0.2, 0.3, 0.4]",)
    default = segment_text("The dog [0.1, 0.2, 0.3, 0.4] sleeps.").segments[0]
    assert default.protected == ("0.1", "0.2", "0.3", "0.4")
    with pytest.raises(ValueError, match="Invalid protection pattern"):
        ProtectionRules().with_patterns("[unclosed")
    with pytest.raises(ValueError, match="empty string"):
        ProtectionRules().with_patterns("a*")


def test_verify_translation_catches_lost_spans_and_invented_markup():
    segment = segment_text("There are 3 dogs at https://x.org today.").segments[0]
    assert verify_translation(segment, "Hay 3 perros en https://x.org hoy.") is None
    assert "lost protected spans" in verify_translation(segment, "Hay tres perros en https://x.org hoy.")
    assert "empty" in verify_translation(segment, "  ")
    assert "<image>" in verify_translation(segment, "<image> Hay 3 perros en https://x.org hoy.")
    twice = segment_text("Buy 2 and 2 more.").segments[0]
    assert "lost protected spans" in verify_translation(twice, "Compra 2 y algunos más.")


# --------------------------------------------------------------------------- records


def _row(**overrides):
    row = {"id": "1", "image": "1.jpg", "conversations": [{"from": "human", "value": "<image>\nHi?"}]}
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ("just a string", "la fila es un str de JSON"),
        (_row(id=None), "falta 'id' o no es válido"),
        (_row(id=True), "falta 'id' o no es válido"),
        ({"id": "1"}, "falta la clave 'conversations'"),
        (_row(conversations="[{'from': 'human'}]"), "'conversations' es un str"),
        (_row(conversations=[]), "'conversations' está vacía"),
        (_row(conversations=["hello"]), "el turno 0 es un str"),
        (_row(conversations=[{"from": "human"}]), "al turno 0 le falta la clave 'value'"),
        (_row(conversations=[{"value": "x"}]), "al turno 0 le falta la clave 'from'"),
        (_row(conversations=[{"from": "user", "value": "x"}]), "'from' vale 'user'"),
        (_row(conversations=[{"from": "gpt", "value": None}]), "'value' es null"),
        (_row(conversations=[{"from": "gpt", "value": 7}]), "'value' es int"),
        (_row(conversations=[{"from": "gpt", "value": {"text": "x"}}]), "'value' es dict"),
        (Malformed("la línea 3 no es JSON válido"), "la línea 3 no es JSON válido"),
    ],
)
def test_malformed_rows_get_a_reason(obj, reason):
    result = validate_row(obj, 0)
    assert isinstance(result, str) and reason in result


def test_valid_rows_keep_their_keys_and_the_english_alongside():
    row = validate_row(_row(id=42, extra={"k": 1}), 7)
    out = translated_row(row, ["<image>\nHola?"])
    assert out["id"] == "42" and out["image"] == "1.jpg" and out["extra"] == {"k": 1}
    assert out["conversations"] == [{"from": "human", "value": "<image>\nHola?"}]
    assert out["conversations_en"] == [{"from": "human", "value": "<image>\nHi?"}]
    assert out["row_index"] == 7


def test_load_rows_reads_json_and_jsonl_and_explains_bad_files(tmp_path):
    from utils.translate.records import TranslateError

    good = tmp_path / "rows.jsonl"
    good.write_bytes(b'\xef\xbb\xbf{"id": "a", "conversations": []}\n\n{broken\n{"id": "b"}\n{"id": "\xff"}\n')
    rows = load_rows(good)
    assert len(rows) == 4 and rows[0]["id"] == "a"
    assert isinstance(rows[1], Malformed) and "línea 3" in rows[1].reason
    assert isinstance(rows[3], Malformed) and "la línea 5 no es UTF-8 válido" in rows[3].reason
    assert len(load_rows(MINI, limit=5)) == 5
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "a"},', encoding="utf-8")
    with pytest.raises(TranslateError, match=r"no es JSON válido.*línea 1.*JSON Lines"):
        load_rows(bad)
    scalar = tmp_path / "scalar.json"
    scalar.write_text('{"id": "a"}', encoding="utf-8")
    with pytest.raises(TranslateError, match="no una lista de filas"):
        load_rows(scalar)
    with pytest.raises(TranslateError, match="No se encuentra"):
        load_rows(tmp_path / "missing.json")
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('[{"id": "a", "value": "ni\u00f1o"}]'.encode("latin-1"))
    with pytest.raises(TranslateError, match="no es UTF-8 válido.*latin-1"):
        load_rows(latin1)


def test_mini_data_is_representative():
    rows = json.loads(MINI.read_text(encoding="utf-8"))
    valid = [validate_row(r, i) for i, r in enumerate(rows)]
    good = [v for v in valid if not isinstance(v, str)]
    assert len(good) >= 60
    values = [t.value for v in good for t in v.turns]
    assert any(len(v.turns) >= 6 for v in good), "multi-turn conversations"
    assert any(v.startswith("<image>") for v in values) and any(v.endswith("<image>") for v in values)
    assert any("```" in v for v in values), "code blocks"
    assert any(re.search(r"^\d\. ", v, re.MULTILINE) for v in values), "numbered lists"
    assert any(re.search(r"^- ", v, re.MULTILINE) for v in values), "bullet lists"
    assert any(re.search(r"\d", v) for v in values), "numbers"
    questions = [v.turns[0].value.replace("<image>", "").strip() for v in good]
    assert len(questions) - len(set(questions)) >= 10, "LLaVA repeats many questions"
    assert sum(isinstance(v, str) for v in valid) >= 3, "a few malformed rows for the quarantine demo"
