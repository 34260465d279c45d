"""Notebook 03's exercises: each check fails on the stub and on typical wrong answers, passes on the solution."""

from __future__ import annotations

import re

import pytest

from utils.core.settings import get_settings
from utils.good_bad.mt_eval import check_error_detector
from utils.good_bad.translation_pairs import check_generation_prompt, load_pairs

CFG = get_settings("mini").good_bad


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from utils.core.assets import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(CFG.base_model))


@pytest.fixture(scope="module")
def pairs():
    return {
        "good": load_pairs(CFG.good_dataset),
        "bad": load_pairs(CFG.bad_dataset),
        "test": load_pairs(f"local:data/{CFG.test_file}"),
    }


# --------------------------------------------------------------------------- exercise 1 (guided)


def _messages(frase, system=CFG.system_prompt):
    return [{"role": "system", "content": system}, {"role": "user", "content": frase}]


def test_generation_prompt_check(tokenizer, pairs, capsys):
    def solution(frase):
        return tokenizer.apply_chat_template(_messages(frase), tokenize=False, add_generation_prompt=True)

    def stub(frase):
        raise NotImplementedError("Escribe prompt_para_traducir")

    def no_header(frase):  # forgot add_generation_prompt
        return tokenizer.apply_chat_template(_messages(frase), tokenize=False)

    def no_system(frase):  # the template puts its own default system prompt
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": frase}], tokenize=False, add_generation_prompt=True
        )

    def ids(frase):  # tokenize=False missing: a list of ids
        return tokenizer.apply_chat_template(_messages(frase), add_generation_prompt=True)

    target = {p.source: p.target for p in pairs["test"]}

    def with_answer(frase):  # the translation given away in the prompt
        messages = _messages(frase) + [{"role": "assistant", "content": target[frase]}]
        return tokenizer.apply_chat_template(messages, tokenize=False)

    def by_hand(frase):  # typed tokens, an extra BOS-like prefix
        return "<|im_start|>" + solution(frase)

    def returns_none(frase):
        solution(frase)

    test = pairs["test"]
    assert check_generation_prompt(solution, tokenizer, test, CFG.system_prompt)
    for wrong in (stub, no_header, no_system, ids, with_answer, by_hand, returns_none):
        assert not check_generation_prompt(wrong, tokenizer, test, CFG.system_prompt), wrong.__name__
    out = capsys.readouterr().out
    assert "esqueleto" in out and "add_generation_prompt=True" in out and "tokenize=False" in out
    assert "¡Bien hecho!" in out and "Aún no" in out


# --------------------------------------------------------------------------- exercise 2 (open)


def test_error_detector_check(pairs, capsys):
    def solution(traduccion):  # the notebook's: an explicit «yo»
        return re.search(r"\byo\b", traduccion, flags=re.IGNORECASE) is not None

    articles = re.compile(r"\b(el|la|los|las|un|una|unos|unas|al|del)\b", re.IGNORECASE)

    def no_article(traduccion):  # another valid answer: no article at all
        return articles.search(traduccion) is None

    def stub(traduccion):
        raise NotImplementedError("Escribe detecta_error")

    def everything(traduccion):  # flags correct Spanish too
        return True

    def has_article(traduccion):  # the rule upside down
        return articles.search(traduccion) is not None

    def too_rare(traduccion):  # a real error, but too rare to be a systematic symptom
        return "chequea" in traduccion

    def match_object(traduccion):  # re.search's result, not a bool
        return re.search(r"\w", traduccion)

    good, bad = pairs["good"], pairs["bad"]
    assert check_error_detector(solution, good, bad)
    assert check_error_detector(no_article, good, bad)
    for wrong in (stub, everything, has_article, too_rare, match_object, lambda t: None):
        assert not check_error_detector(wrong, good, bad)
    out = capsys.readouterr().out
    assert "esqueleto" in out and "hazla más específica" in out and "re.search(...) is not None" in out
