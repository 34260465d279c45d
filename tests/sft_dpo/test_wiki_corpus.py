"""The Spanish Wikipedia filters: disambiguation, length, end sections; the mini corpus."""

from __future__ import annotations

import pytest

from utils.sft_dpo.wiki_corpus import (
    CorpusNotFoundError,
    CorpusReport,
    clean_articles,
    excerpt,
    is_disambiguation,
    load_source,
    read_jsonl,
    strip_sections,
)

BODY = "La Luna es el único satélite natural de la Tierra. " * 12


def test_strip_sections_cuts_at_the_first_end_section():
    text = f"{BODY}\n\nExploración\nEl Apolo 11 llegó en 1969.\n\nVéase también\nMarte\n\nReferencias\nLibro (2001).\n\n== Enlaces externos ==\nNASA"
    body, removed = strip_sections(text)
    assert body.endswith("El Apolo 11 llegó en 1969.")
    assert "Marte" not in body and "NASA" not in body and "Libro" not in body
    assert removed == 3
    assert strip_sections("Sin secciones finales.") == ("Sin secciones finales.", 0)
    # A heading word inside a sentence is prose, not a heading.
    prose = "Las Referencias del autor son muchas.\nOtra frase."
    assert strip_sections(prose)[0] == prose


@pytest.mark.parametrize(
    ("title", "text", "expected"),
    [
        ("Mercurio (desambiguación)", "Mercurio puede referirse a: …", True),
        ("Colón", "Colón puede hacer referencia a:\n\nCristóbal Colón…", True),
        ("Luna", BODY, False),
        ("Texto", "En este libro se explica qué puede referirse a un concepto. " + BODY, False),
    ],
)
def test_disambiguation_pages(title, text, expected):
    assert is_disambiguation(title, text) is expected


def test_filters_strip_before_measuring_and_count_reasons():
    rows = [
        {"id": "1", "title": "Luna", "text": BODY + "\n\nReferencias\n" + "Cita. " * 10},
        {"id": "2", "title": "Esbozo", "text": "Corto. " * 10 + "\n\nReferencias\n" + "Cita larga. " * 200},
        {"id": "3", "title": "Largo", "text": BODY * 30},
        {"id": "4", "title": "Nada (desambiguación)", "text": BODY},
        {"id": "5", "title": "", "text": BODY},
    ]
    report = CorpusReport()
    kept = list(clean_articles(rows, min_chars=300, max_chars=2000, report=report))
    assert [a.id for a in kept] == ["1"] and "Cita" not in kept[0].text
    assert report.as_dict() == {
        "articles_read": 5, "articles_kept": 1, "dropped_disambiguation": 1, "dropped_empty": 1,
        "dropped_too_long": 1, "dropped_too_short": 1, "sections_stripped": 1,
    }  # fmt: skip


def test_limit_stops_reading():
    rows = [{"id": str(i), "title": f"T{i}", "text": BODY} for i in range(10)]
    report = CorpusReport()
    assert len(list(clean_articles(rows, min_chars=10, max_chars=10_000, limit=3, report=report))) == 3
    assert report.read == 3


def test_mini_corpus_has_30_good_articles_and_pages_the_filters_drop():
    report = CorpusReport()
    kept = list(
        clean_articles(
            load_source("local:data", "wikipedia_es_mini.jsonl", 1000), min_chars=400, max_chars=6000, report=report
        )
    )
    assert len(kept) >= 30
    assert (
        report.dropped["disambiguation"] >= 1 and report.dropped["too_short"] >= 1 and report.dropped["too_long"] >= 1
    )
    assert len({a.id for a in kept}) == len(kept)
    for article in kept:
        assert "\nReferencias" not in article.text and "\nEnlaces externos" not in article.text


def test_excerpt_cuts_at_a_boundary():
    text = "Primera frase corta. " * 20 + "\n\n" + "Segunda parte. " * 20
    cut = excerpt(text, 300)
    assert len(cut) <= 300 and cut.endswith(".")
    assert excerpt("breve", 300) == "breve"


def test_bad_jsonl_line_is_named(tmp_path, monkeypatch):
    (tmp_path / "src" / "utils" / "core").mkdir(parents=True)
    (tmp_path / "src" / "utils" / "core" / "settings.py").write_text("")
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "bad.jsonl").write_text('{"title": "ok", "text": "x"}\n{roto\n', encoding="utf-8")
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    with pytest.raises(CorpusNotFoundError, match=r"bad\.jsonl:2 is not valid JSON"):
        read_jsonl("bad.jsonl")
    with pytest.raises(CorpusNotFoundError, match="not found"):
        read_jsonl("missing.jsonl")
