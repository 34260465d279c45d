"""Notebook 04's stand-ins: llava-1.5-7b-hf's geometry and module names, VQAv2's layout.

The end-to-end check is ``python -m rehearsal run 04`` (the notebook itself, through the
FakeHub); these tests pin what the notebook's code depends on, read from the built files.
"""

from __future__ import annotations

import pytest

from rehearsal.hub import HubTree
from rehearsal.standins import nb04
from utils.core.settings import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    hub = HubTree(tmp_path_factory.mktemp("hub"))
    nb04.build(hub)
    return hub


def test_llava_stand_in_has_the_real_geometry_and_module_names(tree, tmp_path):
    import torch
    from nb04_cells import notebook_collator
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from utils.llava_vqa.llava_model import BNB_SKIP_MODULES, check_image_tokens, expected_image_tokens
    from utils.llava_vqa.vqa_data import VqaRow, csv_to_llava_rows

    folder = tree.root / "models" / nb04.MODEL_ID
    model = LlavaForConditionalGeneration.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    config = model.config
    assert model.dtype == torch.float16  # stored like the real checkpoint
    assert (config.vision_config.image_size, config.vision_config.patch_size) == (336, 14)
    assert (config.vision_feature_layer, config.vision_feature_select_strategy) == (-2, "default")
    assert config.image_seq_length == expected_image_tokens(config) == 576
    assert config.text_config.vocab_size % 64 == 0 and config.text_config.model_type == "llama"
    names = {name for name, _ in model.named_modules()}
    assert set(BNB_SKIP_MODULES) <= names
    assert "model.language_model.layers.0.mlp.gate_proj" in names

    Image.new("RGB", (64, 48), (200, 20, 20)).save(tmp_path / "a.jpg")
    rows = csv_to_llava_rows(
        [VqaRow("a.jpg", "What color is the bus?", "red", "other")], get_settings("full").llava.answer_instruction
    )
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}],
        add_generation_prompt=True,
        tokenize=False,
    )
    assert prompt == "USER: <image>\nQ? ASSISTANT:"
    batch = notebook_collator(processor, tmp_path)(rows)
    assert check_image_tokens(config, processor, batch["input_ids"]).per_row == [576]
    assert batch["pixel_values"].shape[-2:] == (336, 336)
    answer = processor.tokenizer.decode(batch["labels"][0][batch["labels"][0] != -100])
    assert answer.strip() == "red" + processor.tokenizer.eos_token


def test_vqav2_stand_in_has_the_cards_layout_and_serves_the_full_split(tree):
    from datasets import load_dataset

    from utils.llava_vqa.vqa_data import HubColumns, split_records_by_image

    folder = tree.root / "datasets" / nb04.DATASET_ID
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "path: data/validation-*" in card and "path: data/testdev-*" in card
    files = sorted(p.name for p in (folder / "data").iterdir())
    assert "validation-00000-of-00002.parquet" in files and "test-00000-of-00001.parquet" in files
    data = load_dataset(
        "parquet", data_files={"validation": str(folder / "data" / "validation-*.parquet")}, split="validation"
    )
    assert data.features == nb04.vqav2_features()
    assert set(data.unique("answer_type")) == {"yes/no", "number", "other"}
    full = get_settings("full").llava
    records = [dict(r) for r in data]
    train, test = split_records_by_image(
        records, train_size=full.train_size, test_size=full.test_size, columns=HubColumns()
    )
    assert (len(train), len(test)) == (full.train_size, full.test_size)
    assert not {r["image_id"] for r in train} & {r["image_id"] for r in test}
