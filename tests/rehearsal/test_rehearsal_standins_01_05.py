"""Stand-ins of notebooks 01 and 05: real layouts, real classes, runs that stay short."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from rehearsal.hub import HubTree
from rehearsal.standins import nb01, nb05
from rehearsal.standins.common import QWEN25_GGUF_FILE, QWEN25_GGUF_REPO
from utils.core.settings import get_settings
from utils.translate.mini_model import OPUS_MT_EN_ES_CONFIG
from utils.translate.records import validate_row


def test_llava_rows_have_the_real_layout():
    rows = nb01.generate_rows()
    full = get_settings("full").translate
    assert len(rows) >= full.rows  # the full profile's 2000 rows exist
    assert rows == nb01.generate_rows()  # deterministic
    for index, row in enumerate(rows):
        assert set(row) == {"id", "image", "conversations"}
        assert re.fullmatch(r"\d{12}", row["id"]) and row["image"] == f"{row['id']}.jpg"
        roles = [t["from"] for t in row["conversations"]]
        assert roles == ["human", "gpt"] * (len(roles) // 2)
        first = row["conversations"][0]["value"]
        assert first.startswith("<image>\n") or first.endswith("\n<image>")
        assert not any("<image>" in t["value"] for t in row["conversations"][1:])
        assert not isinstance(validate_row(row, index), str), validate_row(row, index)
    assert max(Counter(r["id"] for r in rows).values()) > 1  # one image, several tasks
    assert not any("```" in t["value"] for r in rows for t in r["conversations"])  # like the real sample
    both_sides = Counter(r["conversations"][0]["value"].startswith("<image>") for r in rows)
    assert both_sides[True] and both_sides[False]


@pytest.fixture(scope="module")
def built01(tmp_path_factory) -> HubTree:
    hub = HubTree(tmp_path_factory.mktemp("hub01"))
    nb01.build(hub)
    return hub


def test_nb01_repos_and_files(built01):
    repos = {(t, r): folder for t, r, folder in built01.repos()}
    full = get_settings("full")
    data = repos[("dataset", full.translate.dataset_id)]
    rows = json.loads((data / full.translate.dataset_file).read_text(encoding="utf-8"))
    assert rows == nb01.generate_rows()
    assert (data / "README.md").read_text(encoding="utf-8").startswith("---\nlicense: cc-by-4.0\n")
    mt = repos[("model", full.translate.mt_model_id)]
    config = json.loads((mt / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["MarianMTModel"]
    for key in (
        "vocab_size",
        "pad_token_id",
        "decoder_start_token_id",
        "eos_token_id",
        "activation_function",
        "scale_embedding",
        "share_encoder_decoder_embeddings",
        "max_position_embeddings",
    ):
        assert config[key] == OPUS_MT_EN_ES_CONFIG[key], key
    assert {"source.spm", "target.spm", "vocab.json", "tokenizer_config.json"} <= {p.name for p in mt.iterdir()}
    assert ("model", QWEN25_GGUF_REPO) in repos


def test_nb01_mt_model_stops_early_with_full_decoding_settings(built01):
    """num_beams=4, max_new_tokens=256 (full) ends at EOS_STEP, not after 256 steps."""
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    full = get_settings("full").translate
    folder = built01.root / "models" / full.mt_model_id
    tokenizer = MarianTokenizer.from_pretrained(folder)
    model = MarianMTModel.from_pretrained(folder).eval()
    model.generation_config.max_length = None
    texts = nb01.english_lines(nb01.generate_rows(40))[:24]
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        out = model.generate(**inputs, num_beams=full.num_beams, max_new_tokens=full.max_new_tokens, do_sample=False)
    decoded = tokenizer.batch_decode(out, skip_special_tokens=True)
    assert out.shape[1] <= nb01.EOS_STEP + 2
    assert all(text.strip() for text in decoded)  # not empty: real subwords, then </s>
    assert (out == 0).any(dim=1).all()  # every output ended with </s>


def test_nb05_serves_a_real_gguf_under_the_full_name(tmp_path):
    hub = HubTree(tmp_path)
    nb05.build(hub)
    spec = get_settings("full").llm.gguf
    assert spec == f"hf:{QWEN25_GGUF_REPO}/{QWEN25_GGUF_FILE}"
    gguf = tmp_path / "models" / QWEN25_GGUF_REPO / QWEN25_GGUF_FILE
    assert gguf.read_bytes()[:4] == b"GGUF"
