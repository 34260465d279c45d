"""Batched greedy decoding for encoder-decoder MT models, without ``generate``'s per-step copies.

``model.generate`` runs every step's logits (batch x vocabulary: 64 x 65,001 floats for
opus-mt) through generic processors that each allocate a full copy: the float32 copy of the
last position, the pad-token ban, the minimum-length ban, the forced end.  At batch size 1
that is nothing; at batch size 64 on a CPU it is about a third of the time.  This loop does
the same operations in place on that one tensor, so it returns exactly the token ids
``generate`` returns (``tests/translate/test_translate_greedy.py`` checks it on the mini opus-mt model
and on a tiny NLLB-style model).

It handles only what greedy translation with Marian / NLLB / M2M100 needs: start token,
end token(s), pad, single-token bans (``bad_words_ids``), ``forced_bos_token_id`` (NLLB's
target language), ``forced_eos_token_id``, ``min_new_tokens``, ``max_new_tokens``.
:func:`fast_greedy_supported` says when a model's generation settings ask for anything else
(beam search, sampling, repetition penalties...); the backend then calls ``generate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Generation settings this loop reproduces (or that cannot change a greedy result).
HANDLED = frozenset(
    {
        "max_new_tokens",
        "min_new_tokens",
        "max_length",  # max_new_tokens wins when both are set, as in generate
        "bad_words_ids",  # single-token entries only, checked below
        "forced_bos_token_id",
        "forced_eos_token_id",
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "decoder_start_token_id",
        "use_cache",
        "early_stopping",  # beam search only
        "length_penalty",  # beam search only
        "renormalize_logits",  # a log-softmax: same argmax
        "temperature",  # sampling only (do_sample is checked)
        "top_k",
        "top_p",
        "transformers_version",
        "_from_model_config",
    }
)
#: Settings that are fine at these values (``None`` is always fine).
NEUTRAL = {
    "do_sample": (False,),
    "num_beams": (1,),
    "num_return_sequences": (1,),
    "min_length": (0,),
    "output_attentions": (False,),
    "output_hidden_states": (False,),
    "output_scores": (False,),
    "output_logits": (False,),
    "return_dict_in_generate": (False,),
}


def effective_generation_settings(model: Any, generate_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The model's generation config updated with ``generate_kwargs``, ``None`` values dropped."""
    settings = {k: v for k, v in model.generation_config.to_dict().items() if v is not None}
    settings.update({k: v for k, v in generate_kwargs.items() if v is not None})
    return settings


def fast_greedy_supported(model: Any, generate_kwargs: Mapping[str, Any]) -> str | None:
    """Why :func:`greedy_generate` cannot replace ``model.generate`` here (``None``: it can)."""
    if not getattr(model.config, "is_encoder_decoder", False):
        return "not an encoder-decoder model"
    settings = effective_generation_settings(model, generate_kwargs)
    if "max_new_tokens" not in settings:
        return "max_new_tokens is not set"
    for key, value in settings.items():
        if key in HANDLED:
            continue
        if key in NEUTRAL and value in NEUTRAL[key]:
            continue
        return f"generation setting {key}={value!r} is not handled by the fast greedy loop"
    if any(len(ids) != 1 for ids in settings.get("bad_words_ids") or []):
        return "multi-token bad_words_ids"
    if "decoder_start_token_id" not in settings or "eos_token_id" not in settings:
        return "decoder_start_token_id or eos_token_id is missing"
    return None


def greedy_generate(model: Any, input_ids: Any, attention_mask: Any, generate_kwargs: Mapping[str, Any]) -> Any:
    """Greedy decoding of a padded batch; returns ``model.generate``'s token ids.

    Args:
        model: a transformers encoder-decoder model in eval mode.
        input_ids / attention_mask: the tokenized, padded source batch.
        generate_kwargs: the same keyword arguments ``generate`` would get; check them with
            :func:`fast_greedy_supported` first.

    Returns:
        A ``(batch, 1 + steps)`` tensor: the decoder start token, then one token per step;
        rows that ended early are filled with the pad token, as ``generate`` does.
    """
    import torch

    settings = effective_generation_settings(model, generate_kwargs)
    max_new_tokens = int(settings["max_new_tokens"])
    min_new_tokens = int(settings.get("min_new_tokens") or 0)
    eos = settings["eos_token_id"]
    eos_ids = [eos] if isinstance(eos, int) else list(eos)
    pad = settings.get("pad_token_id", eos_ids[0])
    banned = [ids[0] for ids in settings.get("bad_words_ids") or [] if ids[0] not in eos_ids]  # as generate
    forced_bos = settings.get("forced_bos_token_id")
    forced_eos = settings.get("forced_eos_token_id")
    device = input_ids.device

    with torch.inference_mode():
        encoder_outputs = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask)
        rows = input_ids.shape[0]
        tokens = [torch.full((rows,), settings["decoder_start_token_id"], dtype=torch.long, device=device)]
        eos_tensor = torch.tensor(eos_ids, device=device)
        finished = torch.zeros(rows, dtype=torch.bool, device=device)
        cache = None
        for step in range(max_new_tokens):
            out = model(
                encoder_outputs=encoder_outputs,
                attention_mask=attention_mask,
                decoder_input_ids=tokens[-1][:, None],
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :]  # this step's scores; the model made them, we may edit them
            # The same processors, in the same order, as generate:
            if banned:
                logits[:, banned] = float("-inf")
            if step < min_new_tokens:
                logits[:, eos_ids] = float("-inf")
            if forced_bos is not None and step == 0:
                logits.fill_(float("-inf"))
                logits[:, forced_bos] = 0
            if forced_eos is not None and step == max_new_tokens - 1:
                logits.fill_(float("-inf"))
                logits[:, forced_eos] = 0
            # max(dim).indices == argmax (the first of equal scores), twice as fast on bfloat16.
            next_tokens = logits.max(dim=-1).indices
            next_tokens = torch.where(finished, torch.full_like(next_tokens, pad), next_tokens)
            tokens.append(next_tokens)
            finished |= torch.isin(next_tokens, eos_tensor)
            if bool(finished.all()):
                break
    return torch.stack(tokens, dim=1)
