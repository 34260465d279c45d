"""The fast greedy loop returns exactly ``model.generate``'s token ids, or is not used."""

from __future__ import annotations

import pytest
import torch

from utils.translate.greedy import fast_greedy_supported, greedy_generate

#: A small encoder-decoder; init_std 1.0 so that different sources give different outputs.
SMALL = {
    "vocab_size": 40,
    "d_model": 32,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 4,
    "decoder_attention_heads": 4,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "max_position_embeddings": 64,
    "init_std": 1.0,
}


def tiny_marian(seed: int = 0):
    """A small random MarianMT with opus-mt's special tokens (pad = start, banned; eos 0)."""
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(seed)
    config = MarianConfig(**SMALL, pad_token_id=39, eos_token_id=0, decoder_start_token_id=39, forced_eos_token_id=0)
    model = MarianMTModel(config).eval()
    model.generation_config.bad_words_ids = [[39]]
    return model


def tiny_m2m(seed: int = 0):
    """A small random M2M100 (NLLB's class) whose target language is a forced first token."""
    from transformers import M2M100Config, M2M100ForConditionalGeneration

    torch.manual_seed(seed)
    config = M2M100Config(**SMALL, pad_token_id=1, eos_token_id=2, bos_token_id=0, decoder_start_token_id=2)
    return M2M100ForConditionalGeneration(config).eval()


def padded_batch(pad: int, eos: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Five sources of different lengths, right-padded like a tokenizer does."""
    generator = torch.Generator().manual_seed(seed)
    lengths = [3, 9, 1, 6, 12]
    ids = torch.full((len(lengths), max(lengths) + 1), pad)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(3, 38, (n,), generator=generator)
        ids[row, n] = eos
        mask[row, : n + 1] = 1
    return ids, mask


def both(model, kwargs):
    ids, mask = padded_batch(model.config.pad_token_id, model.config.eos_token_id)
    assert fast_greedy_supported(model, kwargs) is None
    with torch.inference_mode():
        expected = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    return expected, greedy_generate(model, ids, mask, kwargs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_ids_as_generate_with_rows_that_end_early(seed):
    model = tiny_marian(seed)
    kwargs = {"max_new_tokens": 12, "num_beams": 1, "do_sample": False}
    first, _ = both(model, kwargs)
    # Random weights rarely pick token 0; make a token that some rows (not all) produce the end token.
    generated = first[:, 1:]
    rows_with = {int(t): int((generated == t).any(dim=1).sum()) for t in generated.unique()}
    eos = max((t for t, n in rows_with.items() if 0 < n < len(generated)), key=lambda t: rows_with[t])
    expected, fast = both(model, {**kwargs, "eos_token_id": eos})
    assert torch.equal(fast, expected)
    ended = (expected[:, 1:] == eos).any(dim=1)
    assert ended.any() and not ended.all()  # both kinds of rows are in the batch
    assert (expected == model.config.pad_token_id)[:, 1:].any()  # rows that ended were padded


def test_same_ids_as_generate_with_a_minimum_length_a_banned_token_and_the_forced_end():
    model = tiny_marian(3)
    with torch.no_grad():  # make the end token and the banned pad token the model's favourites
        model.final_logits_bias[0, 0] = 50.0
        model.final_logits_bias[0, 39] = 100.0
    expected, fast = both(model, {"max_new_tokens": 7, "min_new_tokens": 7, "num_beams": 1, "do_sample": False})
    assert torch.equal(fast, expected)
    assert expected.shape[1] == 8 and (expected[:, -1] == 0).all()  # start + 7 tokens, the last forced to eos
    assert not torch.isin(expected[:, 1:-1], torch.tensor([0, 39])).any()  # neither ban was skipped


@pytest.mark.parametrize("tie", [False, True])
def test_same_ids_as_generate_in_bfloat16(tie):
    model = tiny_marian(4).to(torch.bfloat16)  # generate scores a float32 copy; the loop the bf16 scores
    if tie:  # tokens 7 and 5 score the same (bf16 steps are 512 wide there): the first one wins
        with torch.no_grad():
            model.final_logits_bias[0, 5] = model.final_logits_bias[0, 7] = 100_000.0
    expected, fast = both(model, {"max_new_tokens": 10, "num_beams": 1, "do_sample": False})
    assert torch.equal(fast, expected)
    if tie:
        assert (expected[:, 1:-1] == 5).all()


def test_same_ids_as_generate_with_a_forced_target_language():
    model = tiny_m2m()
    expected, fast = both(model, {"max_new_tokens": 10, "forced_bos_token_id": 33, "num_beams": 1, "do_sample": False})
    assert torch.equal(fast, expected)
    assert (expected[:, 1] == 33).all()


def test_same_ids_as_generate_on_the_mini_opus_mt_model():
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from utils.core.assets import resolve_model

    path = resolve_model("local:opus-mt-en-es-random")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    model.generation_config.max_length = None
    texts = ["What color is the bus?", "A much longer sentence about a dog catching a frisbee in a park.", "Yes."]
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    kwargs = {"max_new_tokens": 6, "num_beams": 1, "do_sample": False}
    assert fast_greedy_supported(model, kwargs) is None
    with torch.inference_mode():
        expected = model.generate(**inputs, **kwargs)
    assert torch.equal(greedy_generate(model, inputs["input_ids"], inputs["attention_mask"], kwargs), expected)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"num_beams": 4}, "num_beams=4"),
        ({"do_sample": True}, "do_sample=True"),
        ({"repetition_penalty": 1.2}, "repetition_penalty=1.2"),
        ({"no_repeat_ngram_size": 3}, "no_repeat_ngram_size=3"),
        ({"bad_words_ids": [[5, 6]]}, "multi-token bad_words_ids"),
    ],
)
def test_settings_the_loop_does_not_handle_are_refused_with_the_reason(extra, reason):
    model = tiny_marian()
    why = fast_greedy_supported(model, {"max_new_tokens": 5, "num_beams": 1, "do_sample": False, **extra})
    assert why is not None and reason in why


def test_a_decoder_only_model_or_no_length_cap_is_refused():
    from transformers import LlamaConfig, LlamaForCausalLM

    llama = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=40,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    assert fast_greedy_supported(llama, {"max_new_tokens": 5}) == "not an encoder-decoder model"
    assert fast_greedy_supported(tiny_marian(), {"num_beams": 1}) == "max_new_tokens is not set"
