"""Stand-ins for notebook 03 (good vs bad data), full profile.

Model ``Qwen/Qwen2.5-0.5B-Instruct``
    A tiny random ``Qwen2ForCausalLM``: the real ``config.json`` keys and values (model card
    repo ``Qwen/Qwen2.5-0.5B-Instruct``, config.json: hidden 896, 24 layers, 14 heads, 2 KV
    heads, tied embeddings, rope_theta 1e6, max_window_layers 21) with the sizes shrunk; the
    module names (``model.layers.N.self_attn.q_proj`` …, the ones LoRA ``all-linear`` and
    4-bit quantization act on) are the real class's.  Tokenizer: SmolLM2's, which speaks
    ChatML (``<|im_start|>``/``<|im_end|>``) like Qwen2.5 and ships offline; set up like
    Qwen2.5's (``eos`` = ``<|im_end|>``, ``pad`` = ``<|endoftext|>``, no BOS).  The
    ``generation_config.json`` keeps Qwen2.5's sampling defaults (do_sample, temperature 0.7,
    top_p 0.8, top_k 20, repetition_penalty 1.05) so the notebook's greedy decoding must
    override them, as it must with the real model.

Datasets ``mrm8488/en_es_sample_good`` and ``mrm8488/en_es_sample_bad``
    Layout from their dataset cards (README.md YAML on the Hub, revision e01b4ac for the good
    set, 94e48d8 for the bad one): one ``default`` config, one ``train`` split of 20 rows in
    ``data/train-*`` (the file ``push_to_hub`` writes: ``data/train-00000-of-00001.parquet``),
    features ``source`` (string) and ``target`` (string).  The rows are the first 20 pairs of
    the course's own ``data/en_es_good.jsonl`` / ``en_es_bad.jsonl`` (the real rows are not
    available offline); the size, 20, is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
DATASETS = {"mrm8488/en_es_sample_good": "en_es_good.jsonl", "mrm8488/en_es_sample_bad": "en_es_bad.jsonl"}
#: Rows per Hub sample (dataset cards: ``num_examples: 20``).
HUB_SAMPLE_ROWS = 20

# Qwen/Qwen2.5-0.5B-Instruct config.json, sizes shrunk (hidden 896 → 64, 24 → 2 layers, …);
# 4 heads / 2 KV heads keep grouped-query attention, as 14 / 2 does.
QWEN25_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "attention_dropout": 0.0,
    "hidden_act": "silu",
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 128,
    "max_position_embeddings": 32768,
    "max_window_layers": 21,
    "model_type": "qwen2",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "use_cache": True,
    "use_sliding_window": False,
}
# Qwen/Qwen2.5-0.5B-Instruct generation_config.json (token ids mapped to the stand-in tokenizer).
QWEN25_SAMPLING = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}


def chatml_tokenizer():
    """SmolLM2's ChatML tokenizer, set up with Qwen2.5's special tokens."""
    from transformers import AutoTokenizer

    from utils.assets import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("local:smollm2-135m-instruct"))
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.bos_token = None
    return tokenizer


def write_qwen25(folder: Path, *, seed: int = 0) -> None:
    """Save the tiny random Qwen2.5-Instruct stand-in (model, generation config, tokenizer) to ``folder``."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = chatml_tokenizer()
    im_end, endoftext = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen2Config(
        **{k: v for k, v in QWEN25_CONFIG.items() if k != "architectures"},
        vocab_size=len(tokenizer),
        bos_token_id=endoftext,  # Qwen2.5: bos_token_id = <|endoftext|>
        eos_token_id=im_end,
    )
    config.architectures = QWEN25_CONFIG["architectures"]
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=endoftext, eos_token_id=[im_end, endoftext], pad_token_id=endoftext, **QWEN25_SAMPLING
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def write_pairs_dataset(folder: Path, rows: list[dict[str, str]]) -> None:
    """A Hub dataset repo as ``push_to_hub`` writes it: README.md YAML + one parquet shard."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"source": pa.array([r["source"] for r in rows], pa.string()),
                      "target": pa.array([r["target"] for r in rows], pa.string())})
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    num_bytes = sum(len(r["source"].encode()) + len(r["target"].encode()) for r in rows)
    (folder / "README.md").write_text(
        "---\n"
        "dataset_info:\n"
        "  features:\n"
        "  - name: source\n    dtype: string\n"
        "  - name: target\n    dtype: string\n"
        "  splits:\n"
        f"  - name: train\n    num_bytes: {num_bytes}\n    num_examples: {len(rows)}\n"
        "configs:\n"
        "- config_name: default\n"
        "  data_files:\n"
        "  - split: train\n    path: data/train-*\n"
        "---\n",
        encoding="utf-8",
    )


def _course_rows(file: str) -> list[dict[str, str]]:
    from utils.paths import data_dir

    lines = (data_dir() / file).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()][:HUB_SAMPLE_ROWS]
    return [{"source": r["source"], "target": r["target"]} for r in rows]


def build(hub) -> None:
    """Write notebook 03's stand-ins into ``hub`` (a :class:`rehearsal.hub.HubTree`)."""
    write_qwen25(hub.model(BASE_MODEL))
    for repo_id, file in DATASETS.items():
        write_pairs_dataset(hub.dataset(repo_id), _course_rows(file))
