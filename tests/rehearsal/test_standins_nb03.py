"""Notebook 03's stand-ins load through the same calls the notebook makes, in the real layout."""

from __future__ import annotations

import pytest

from rehearsal.hub import HubTree
from rehearsal.standins import nb03


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    tree = HubTree(tmp_path_factory.mktemp("hub"))
    nb03.build(tree)
    return tree


def test_qwen_stand_in_has_the_real_class_config_keys_and_chat_format(tree):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder = tree.root / "models" / nb03.BASE_MODEL
    config = AutoConfig.from_pretrained(folder)
    assert config.model_type == "qwen2" and config.architectures == ["Qwen2ForCausalLM"]
    assert config.tie_word_embeddings and config.num_key_value_heads < config.num_attention_heads
    model = AutoModelForCausalLM.from_pretrained(folder)
    names = {name for name, _ in model.named_modules()}
    assert {"model.layers.0.self_attn.q_proj", "model.layers.1.mlp.down_proj", "lm_head"} <= names
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    text = tokenizer.apply_chat_template(
        [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text.endswith("<|im_start|>assistant\n")
    generation = GenerationConfig.from_pretrained(folder)
    assert generation.do_sample and tokenizer.convert_tokens_to_ids("<|im_end|>") in generation.eos_token_id


def test_hub_samples_load_with_the_notebooks_call_in_the_real_layout(tree):
    from datasets import load_dataset

    for repo_id in nb03.DATASETS:
        folder = tree.root / "datasets" / repo_id
        assert (folder / "data" / "train-00000-of-00001.parquet").is_file()
        assert "path: data/train-*" in (folder / "README.md").read_text(encoding="utf-8")
        data = load_dataset(str(folder), split="train")
        assert data.column_names == ["source", "target"] and len(data) == nb03.HUB_SAMPLE_ROWS
        assert all(isinstance(row["target"], str) and row["target"] for row in data)
