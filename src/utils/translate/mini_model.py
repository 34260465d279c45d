"""``local:opus-mt-en-es-random``: the opus-mt-en-es architecture with random weights.

No English→Spanish MT weights can be installed offline (see ``shared/OFFLINE.md``), so the
mini profile builds a :class:`~transformers.MarianMTModel` from the configuration values
of ``Helsinki-NLP/opus-mt-en-es`` — same layers, sizes and 65,001-token output layer, so
the same compute per token — with random weights, and a :class:`~transformers.MarianTokenizer`
whose SentencePiece model is trained here on the English text of the mini data.

Its "translations" are random subwords: it proves the mechanics (batching, cache, resume,
protection, speed) and lets the quality checks show what they catch, not translation
quality.  It is built once (~10–20 s, ~300 MB) into the course cache.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

from utils.core.assets import cached_dir
from utils.core.paths import data_dir

#: Bump when the build changes, so caches rebuild.
CACHE_TAG = "opus-mt-en-es-random-v2"  # v2: vocab.json fills every id up to <pad>
PAD_ID = 65000  # <pad>, the last row of opus-mt-en-es's output layer
#: The mini data whose English text trains the tokenizer.
TOKENIZER_CORPUS = "llava_instruct_mini.json"
TOKENIZER_VOCAB = 4000
SEED = 0

#: Values of ``Helsinki-NLP/opus-mt-en-es``'s config.json (architecture and special ids).
OPUS_MT_EN_ES_CONFIG: dict[str, object] = {
    "vocab_size": 65001,
    "decoder_vocab_size": 65001,
    "d_model": 512,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "activation_function": "swish",
    "max_position_embeddings": 512,
    "scale_embedding": True,
    "share_encoder_decoder_embeddings": True,
    "pad_token_id": 65000,
    "decoder_start_token_id": 65000,
    "eos_token_id": 0,
    "forced_eos_token_id": 0,
    "dropout": 0.1,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "init_std": 0.02,
}
#: Generation defaults of the real model (kept so that both profiles behave alike).
OPUS_MT_EN_ES_GENERATION = {"num_beams": 4, "max_length": 512, "bad_words_ids": [[65000]]}


def _corpus_lines() -> list[str]:
    """English sentences from the mini data (one per line, tags removed)."""
    rows = json.loads((data_dir() / TOKENIZER_CORPUS).read_text(encoding="utf-8"))
    lines: list[str] = []
    for row in rows:
        turns = row.get("conversations") if isinstance(row, dict) else None
        for turn in turns if isinstance(turns, list) else []:
            value = turn.get("value") if isinstance(turn, dict) else None
            if isinstance(value, str):
                lines += [line.strip() for line in value.replace("<image>", " ").splitlines() if line.strip()]
    return lines


def _train_sentencepiece(lines: list[str], vocab_size: int = TOKENIZER_VOCAB) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus yields fewer pieces; that is fine
        model_type="unigram",
        character_coverage=1.0,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        pad_id=-1,
        minloglevel=2,
    )
    return model.getvalue()


def marian_vocab(pieces: list[str]) -> dict[str, int]:
    """The ``vocab.json`` of the mini model: one token for every id of the output layer.

    Same special ids as the real opus-mt-en-es ``vocab.json`` (``</s>`` = 0, ``<unk>`` = 1,
    ``<pad>`` = 65000); the trained pieces follow, and the ids the small SentencePiece model
    does not use are filled with ``<unused_N>`` tokens (never produced by the tokenizer, never
    generated: the output bias blocks them).  Without them the vocabulary would hold ~1,000
    tokens for a 65,001-row embedding, which converters such as CTranslate2's refuse.
    """
    vocab = {"</s>": 0, "<unk>": 1, **{piece: i + 2 for i, piece in enumerate(pieces)}}
    vocab |= {f"<unused_{i}>": i for i in range(len(vocab), PAD_ID)}
    vocab["<pad>"] = PAD_ID
    return vocab


def write_marian_tokenizer(out: Path, lines: list[str], vocab_size: int = TOKENIZER_VOCAB):
    """Train a SentencePiece model on ``lines`` and save a MarianTokenizer with opus-mt's special ids.

    Returns the tokenizer; its ``vocab.json`` has ``</s>``=0, ``<unk>``=1 and ``<pad>``=65000,
    like the real ``Helsinki-NLP/opus-mt-en-es`` vocabulary.
    """
    import sentencepiece as spm
    from transformers import MarianTokenizer

    spm_bytes = _train_sentencepiece(lines, vocab_size)
    for name in ("source.spm", "target.spm"):
        (out / name).write_bytes(spm_bytes)
    processor = spm.SentencePieceProcessor(model_proto=spm_bytes)
    pieces = [
        processor.id_to_piece(i) for i in range(processor.get_piece_size()) if processor.id_to_piece(i) != "<unk>"
    ]
    vocab = marian_vocab(pieces)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    with warnings.catch_warnings():  # it recommends sacremoses, which only normalizes punctuation
        warnings.filterwarnings("ignore", message=".*sacremoses.*")
        tokenizer = MarianTokenizer(
            source_spm=str(out / "source.spm"),
            target_spm=str(out / "target.spm"),
            vocab=str(out / "vocab.json"),
            source_lang="eng",
            target_lang="spa",
        )
    tokenizer.save_pretrained(out)
    return tokenizer


def first_unused_id(tokenizer) -> int:
    """The first id of a :func:`write_marian_tokenizer` vocabulary that no piece uses.

    Ids from here up to ``<pad>`` are ``<unused_N>`` fillers: a model's output bias blocks them.
    """
    return sum(1 for token in tokenizer.get_vocab() if not token.startswith("<unused_")) - 1


def opus_mt_generation_config():
    """The real model's generation_config.json (special ids, 4 beams, max_length 512, no <pad>)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        decoder_start_token_id=65000,
        eos_token_id=0,
        pad_token_id=65000,
        forced_eos_token_id=0,
        **OPUS_MT_EN_ES_GENERATION,
    )


def build_opus_mt_en_es_random(out: Path) -> None:
    """Write a MarianMTModel (opus-mt-en-es config, random weights) and its tokenizer to ``out``."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    tokenizer = write_marian_tokenizer(out, _corpus_lines())
    used = first_unused_id(tokenizer)

    torch.manual_seed(SEED)
    model = MarianMTModel(MarianConfig(**OPUS_MT_EN_ES_CONFIG)).eval()
    # Random weights would mostly pick ids beyond our small vocabulary (decoded as nothing);
    # the output bias keeps generation inside it, as a trained model's would.
    with torch.no_grad():
        model.final_logits_bias[:, used:PAD_ID] = -1e4
        model.final_logits_bias[:, PAD_ID] = -1e4
    model.generation_config = opus_mt_generation_config()
    model.save_pretrained(out)


def opus_mt_en_es_random_dir() -> Path:
    """Folder of ``local:opus-mt-en-es-random`` (built on first use into the course cache)."""
    return cached_dir(CACHE_TAG, build_opus_mt_en_es_random)
