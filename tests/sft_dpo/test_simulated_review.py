"""The reviewer stand-in of mini/CI: its rules, on clear cases."""

from __future__ import annotations

from utils.sft_dpo.simulated_review import overlap, review_dpo, review_sft

CONTEXT = (
    "La Alhambra es un conjunto de palacios y jardines situado en Granada. "
    "Fue residencia de los sultanes nazaríes. En 1984 la Unesco la declaró Patrimonio de la Humanidad."
)


def test_overlap_counts_content_words():
    assert overlap("Los palacios de Granada", CONTEXT) == 1.0  # "palacios", "granada" (short words ignored)
    assert overlap("Pizza napolitana", CONTEXT) == 0.0
    assert overlap("", CONTEXT) == 0.0


def test_sft_rules():
    accepted = review_sft(
        "¿Dónde están los palacios de la Alhambra?", "Los palacios de la Alhambra están en Granada.", CONTEXT, 4
    )
    assert accepted.status == "submitted" and accepted.values == {"calidad": 4, "usa_contexto": "si"}
    corrected = review_sft("¿Qué declaró la Unesco en 1984?", "Declaró que era un aeropuerto moderno.", CONTEXT, 5)
    assert corrected.values["usa_contexto"] == "no" and corrected.values["calidad"] == 2
    assert corrected.values["respuesta_corregida"] == "En 1984 la Unesco la declaró Patrimonio de la Humanidad."
    off_topic = review_sft("¿Cuál es tu pizza favorita?", "La margarita con albahaca fresca.", CONTEXT, 5)
    assert off_topic.status == "discarded" and off_topic.values == {}


def test_dpo_rules():
    ranked = review_dpo("¿Qué declaró la Unesco sobre la Alhambra?",
                        ["Nada relevante ocurrió jamás.", "La Unesco la declaró Patrimonio de la Humanidad."], CONTEXT)  # fmt: skip
    assert ranked.status == "submitted" and ranked.values == {"ranking": ["respuesta_2", "respuesta_1"]}
    tied = review_dpo("¿Qué declaró la Unesco sobre la Alhambra?", ["Nada relevante.", "Nada relevante."], CONTEXT)
    assert tied.status == "discarded"
    fixed = review_dpo(
        "¿Qué declaró la Unesco en 1984?", ["Unos marineros vikingos.", "Unos sultanes vikingos famosos."], CONTEXT
    )
    assert fixed.values["ranking"] == ["respuesta_2", "respuesta_1"]
    assert fixed.values["respuesta_corregida"] == "En 1984 la Unesco la declaró Patrimonio de la Humanidad."
