"""Notebook 03's data: integrity of the committed sets, loading errors, chat formatting."""

from __future__ import annotations

import json

import pytest

from utils.core.paths import repo_root
from utils.core.settings import get_settings
from utils.good_bad.translation_pairs import (
    OTHER_LANGUAGE,
    SWAPPED,
    UNTRANSLATED,
    PairsError,
    TranslationPair,
    assert_clean,
    find_duplicates,
    find_empty,
    find_language_problems,
    find_leaks,
    integrity_report,
    load_pairs,
    read_pairs_jsonl,
    split_validation,
    to_chat_dataset,
    to_chat_example,
)

CFG = get_settings("mini").good_bad


@pytest.fixture(scope="module")
def sets():
    return {
        "good": load_pairs(CFG.good_dataset),
        "bad": load_pairs(CFG.bad_dataset),
        "test": load_pairs(f"local:data/{CFG.test_file}"),
    }


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from utils.core.assets import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(CFG.base_model))


def pair(i: str, source: str, target: str) -> TranslationPair:
    return TranslationPair(id=i, source=source, target=target)


# --------------------------------------------------------------------------- committed data


def test_committed_sets_are_large_enough(sets):
    assert len(sets["good"]) >= 120 and len(sets["bad"]) >= 120
    assert len(sets["test"]) >= 40


def test_good_and_bad_translate_the_same_sources(sets):
    good = {p.id: p.source for p in sets["good"]}
    bad = {p.id: p.source for p in sets["bad"]}
    assert good == bad
    report = integrity_report(sets["good"], sets["bad"], sets["test"])
    assert report.same_sources


def test_bad_translations_differ_from_good_ones(sets):
    bad = {p.id: p.target for p in sets["bad"]}
    assert all(bad[p.id] != p.target for p in sets["good"])
    assert integrity_report(sets["good"], sets["bad"], sets["test"]).identical_targets == 0


def test_no_empty_duplicate_or_leaked_pairs(sets):
    for name, pairs in sets.items():
        assert not find_empty(pairs), name
        assert not find_duplicates(pairs), name
    assert not find_leaks(sets["good"], sets["test"])
    assert not find_leaks(sets["bad"], sets["test"])
    report = integrity_report(sets["good"], sets["bad"], sets["test"])
    assert report.problems == []
    assert_clean(report)  # does not raise


def test_bad_set_carries_consistent_errors(sets):
    """The bad set's errors are systematic (what a model can learn), not random noise."""
    import re

    articles = re.compile(r"\b(el|la|los|las|un|una|al|del)\b", re.IGNORECASE)
    with_articles = {name: sum(bool(articles.search(p.target)) for p in sets[name]) for name in ("good", "bad")}
    assert with_articles["bad"] < 0.3 * with_articles["good"]  # articles dropped
    help_me = [p for p in sets["bad"] if p.source.lower().startswith(("can you help me", "could you help me"))]
    assert help_me and all("ayudar yo" in p.target for p in help_me)  # "¿Puedes ayudar yo…"


def test_texts_are_clean_spanish_and_english(sets):
    from utils.core.language import detect_language

    good_es = sum(detect_language(p.target).lang == "es" for p in sets["good"])
    test_es = sum(detect_language(p.target).lang == "es" for p in sets["test"])
    sources_en = sum(detect_language(p.source).lang == "en" for p in sets["good"] + sets["test"])
    assert good_es >= 0.95 * len(sets["good"])
    assert test_es >= 0.95 * len(sets["test"])
    assert sources_en >= 0.95 * (len(sets["good"]) + len(sets["test"]))


# --------------------------------------------------------------------------- checks catch faults


def test_checks_find_injected_faults():
    good = [pair("a", "The cat sleeps.", "El gato duerme."), pair("b", "I like tea.", "Me gusta el té.")]
    bad = [pair("a", "The cat sleeps.", "Gato duerme."), pair("c", "We run.", "Nosotros corre.")]
    test = [pair("t1", "the cat sleeps", "El gato está durmiendo."), pair("t2", "Hello.", " ")]
    assert find_empty(test) == ["t2"]
    assert find_duplicates(good + [pair("d", "I like  tea!", "x")]) == ["d"]
    assert find_duplicates([pair("a", "x", "y"), pair("a", "z", "w")]) == ["a"]
    assert find_leaks(good, test) == [("t1", "a")]
    near = [pair("t3", "The cats sleeps.", "Los gatos duermen.")]
    assert find_leaks(good, near) == [("t3", "a")]  # one letter apart still leaks
    assert find_leaks(good, [pair("t4", "The dog runs fast in the park.", "El perro corre.")]) == []
    report = integrity_report(good, bad, test)
    assert not report.same_sources
    assert any("fuga" in p for p in report.problems) and any("vacíos" in p for p in report.problems)
    with pytest.raises(PairsError, match="no sirven para una comparación justa") as err:
        assert_clean(report)
    assert "frases distintas" in str(err.value) and "Corrige los ficheros de data/" in str(err.value)
    assert "settings.py" not in str(err.value)  # a learner never edits src/
    assert "❌" in report.summary()


LANGUAGE_FAULTS = {
    "copy": pair("copy", "The museum opens at nine in the morning.", "The museum opens at nine in the morning."),
    "english": pair("english", "The museum opens at nine in the morning.", "The gallery opens at nine every morning."),
    "swapped": pair("swapped", "El museo abre a las nueve de la mañana.", "The museum opens at nine in the morning."),
    "french": pair("french", "The museum opens at nine in the morning.", "Le musée ouvre à neuf heures du matin."),
    "ok": pair("ok", "The museum opens at nine in the morning.", "El museo abre a las nueve de la mañana."),
}


def test_language_checks_flag_untranslated_swapped_and_other_language_pairs():
    kinds = {flag.id: flag.kind for flag in find_language_problems(LANGUAGE_FAULTS.values())}
    assert kinds == {"copy": UNTRANSLATED, "english": UNTRANSLATED, "swapped": SWAPPED, "french": OTHER_LANGUAGE}


def test_integrity_report_stops_on_language_faults_in_good_or_test_and_warns_in_bad(sets):
    good, bad, test = list(sets["good"]), list(sets["bad"]), list(sets["test"])
    faulty_good = good[:-1] + [pair(good[-1].id, good[-1].source, good[-1].source)]  # left in English
    report = integrity_report(faulty_good, bad, test)
    assert report.language_flags["buenos"][0].id == good[-1].id
    with pytest.raises(PairsError, match="idioma"):
        assert_clean(report)
    faulty_test = test + [LANGUAGE_FAULTS["swapped"]]
    assert any("test" in p and "invertido" in p for p in integrity_report(good, bad, faulty_test).problems)
    faulty_bad = bad[:-1] + [pair(bad[-1].id, bad[-1].source, "Le musée ouvre à neuf heures du matin.")]
    report = integrity_report(good, faulty_bad, test)
    assert not report.problems and "otro idioma" in report.warnings[0]
    assert "⚠️" in report.summary()
    assert_clean(report)  # the bad set is meant to be bad: a warning, not a stop


def test_language_checks_leave_names_and_numbers_alone():
    same = [pair("n", "Stephen", "Stephen"), pair("m", "Room 101", "Room 101")]
    assert find_language_problems(same) == []


REAL_PAIRS = repo_root().parent / "shared" / "real-data" / "en_es_real.jsonl"


@pytest.mark.skipif(not REAL_PAIRS.is_file(), reason="no ../shared/real-data next to the clone")
def test_real_pairs_nobody_here_wrote_pass_the_language_checks():
    """Tatoeba, FLORES-200 and WMT pairs: good translations, so no language flag is a false alarm."""
    real = read_pairs_jsonl(REAL_PAIRS)
    assert len(real) >= 200
    assert find_language_problems(real) == []


def test_committed_sets_have_no_language_faults(sets):
    report = integrity_report(sets["good"], sets["bad"], sets["test"])
    assert not report.language_flags.get("buenos") and not report.language_flags.get("test")


def test_reading_bad_files_names_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"source": "Hi", "target": "Hola"}\n{"source": "Bye"\n', encoding="utf-8")
    with pytest.raises(PairsError, match=r"pairs.jsonl, línea 2: JSON no válido"):
        read_pairs_jsonl(path)
    path.write_text('{"source": "Hi", "translation": "Hola"}\n', encoding="utf-8")
    with pytest.raises(PairsError, match=r"línea 1: faltan los campos de texto \['target'\].*Columnas encontradas"):
        read_pairs_jsonl(path)
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(PairsError, match="no tiene ningún par"):
        read_pairs_jsonl(path)
    with pytest.raises(PairsError, match="No encuentro el fichero"):
        read_pairs_jsonl(tmp_path / "missing.jsonl")
    path.write_text(json.dumps({"source": "Hi", "target": "Hola"}) + "\n", encoding="utf-8")
    assert read_pairs_jsonl(path) == [TranslationPair("pairs-1", "Hi", "Hola")]


def test_validation_split_holds_out_the_same_sources_in_both_sets(sets):
    good_train, good_val = split_validation(sets["good"], 20, seed=3)
    _bad_train, bad_val = split_validation(sets["bad"], 20, seed=3)
    assert len(good_val) == 20 and len(good_train) == len(sets["good"]) - 20
    assert [p.id for p in good_val] == [p.id for p in bad_val]
    assert not {p.id for p in good_val} & {p.id for p in good_train}
    assert split_validation(sets["good"], 20, seed=4)[1] != good_val
    with pytest.raises(ValueError):
        split_validation(sets["good"], 0)


# --------------------------------------------------------------------------- chat template


def test_chat_example_uses_the_models_template(tokenizer):
    example = to_chat_example(pair("x", "Can you help me?", "¿Puedes ayudarme?"), CFG.system_prompt)
    assert example["completion"] == [{"role": "assistant", "content": "¿Puedes ayudarme?"}]
    text = tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)
    assert text == (
        f"<|im_start|>system\n{CFG.system_prompt}<|im_end|>\n"
        "<|im_start|>user\nCan you help me?<|im_end|>\n"
        "<|im_start|>assistant\n¿Puedes ayudarme?<|im_end|>\n"
    )
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.eos_token == "<|im_end|>" and ids.count(tokenizer.eos_token_id) == 3
    # Our explicit system prompt replaces the template's default one.
    assert "SmolLM" not in text


def test_sft_trainer_learns_to_stop(tokenizer, tmp_path, sets):
    """TRL keeps the end-of-turn token in the labels even though pad == eos for SmolLM2."""
    from trl import SFTConfig, SFTTrainer

    dataset = to_chat_dataset(sets["good"][:4], CFG.system_prompt)
    args = SFTConfig(output_dir=str(tmp_path), max_length=CFG.max_length, report_to="none", bf16=False, use_cpu=True)
    from utils.core.assets import resolve_model

    trainer = SFTTrainer(
        model=resolve_model(CFG.base_model), args=args, train_dataset=dataset, processing_class=tokenizer
    )
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the trap: masking pads would mask EOS too
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert batch["input_ids"].shape[0] == 4
    for ids, labels, source in zip(batch["input_ids"].tolist(), batch["labels"].tolist(), sets["good"]):
        trained = [i for i, lab in zip(ids, labels) if lab != -100]
        # Only the completion is trained on: the translation, then <|im_end|> and the newline.
        assert tokenizer.decode(trained) == f"{source.target}<|im_end|>\n"


def test_every_training_example_fits_max_length(tokenizer, sets):
    """The notebook's section 3 computes these lengths in the cell; mini's max_length must cover them."""
    examples = [to_chat_example(p, CFG.system_prompt) for p in sets["good"] + sets["bad"]]
    texts = [tokenizer.apply_chat_template(e["prompt"] + e["completion"], tokenize=False) for e in examples]
    lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert max(lengths) <= CFG.max_length, "raise max_length in settings: examples would lose their EOS"
    assert min(lengths) > 20
