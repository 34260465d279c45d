"""Notebook 04 model: the tiny offline LLaVA, its processor and the image-token check."""

from __future__ import annotations

import pytest
from nb04_cells import load_tiny_llava, notebook_collator

from utils.core.assets import resolve_model
from utils.llava_vqa.llava_model import (
    IMAGE_TOKEN,
    ImageTokenMismatchError,
    TinyVisionSpec,
    check_image_token_formula,
    check_image_tokens,
    expected_image_tokens,
)
from utils.llava_vqa.vqa_data import VqaRow, csv_to_llava_rows, generate_synthetic_vqa, read_csv


@pytest.fixture(scope="module")
def tiny():
    """The cached tiny LLaVA (built once per machine, then ~1 s to load)."""
    return load_tiny_llava()


@pytest.fixture(scope="module")
def vqa(tmp_path_factory):
    folder = generate_synthetic_vqa(tmp_path_factory.mktemp("vqa"), train_size=8, test_size=4, seed=5)
    return folder, csv_to_llava_rows(read_csv(folder / "train.csv"), "Responde con una sola palabra.")


@pytest.mark.slow
def test_tiny_llava_is_a_real_llava_with_smollm2_inside(tiny):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlavaForConditionalGeneration

    model, processor = tiny
    assert isinstance(model, LlavaForConditionalGeneration)
    spec = TinyVisionSpec()
    assert model.config.vision_config.image_size == spec.image_size
    assert processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) == model.config.image_token_index
    # The language model carries SmolLM2's shipped weights: same logits on text-only input.
    smol_dir = resolve_model("local:smollm2-135m-instruct")
    smol = AutoModelForCausalLM.from_pretrained(smol_dir)
    ids = AutoTokenizer.from_pretrained(smol_dir)("La capital de Francia es", return_tensors="pt")
    with torch.no_grad():
        ours = model(**ids).logits[0, -1, : smol.config.vocab_size]
        theirs = smol(**ids).logits[0, -1]
    assert torch.allclose(ours, theirs, atol=1e-4)


@pytest.mark.slow
def test_processor_inserts_as_many_image_tokens_as_the_tower_gives_features(tiny, vqa):
    import torch

    model, processor = tiny
    folder, rows = vqa
    batch = notebook_collator(processor, folder)(rows[:4])
    report = check_image_tokens(model.config, processor, batch["input_ids"])
    assert report.expected == expected_image_tokens(model.config) == 4 and report.ok
    assert report.per_row == [4] * 4
    # …and the vision tower really produces that many features per image.
    with torch.no_grad():
        features = model.get_image_features(pixel_values=batch["pixel_values"])
    features = features.pooler_output if hasattr(features, "pooler_output") else features
    assert sum(f.shape[0] for f in features) == 4 * report.expected


@pytest.mark.slow
def test_a_broken_processor_is_caught_before_the_model_fails(tiny, vqa):
    import copy

    import torch

    model, processor = tiny
    folder, rows = vqa
    broken = copy.deepcopy(processor)
    broken.num_additional_image_tokens = 0  # forgets CLIP's CLS feature → one token short
    batch = notebook_collator(broken, folder)(rows[:2])
    with pytest.raises(ImageTokenMismatchError, match=r"insertó \[3\].*espera 4.*num_additional_image_tokens \(0\)"):
        check_image_tokens(model.config, broken, batch["input_ids"])
    with pytest.raises(ValueError, match="Image features and image tokens do not match"), torch.no_grad():
        model(**{k: v for k, v in batch.items() if k != "labels"})


@pytest.mark.slow
def test_collator_labels_cover_only_the_answer(tiny, vqa):
    _model, processor = tiny
    folder, rows = vqa
    batch = notebook_collator(processor, folder)(rows[:3])
    tokenizer = processor.tokenizer
    for i, row in enumerate(rows[:3]):
        labelled = batch["labels"][i][batch["labels"][i] != -100]
        assert tokenizer.decode(labelled) == row["conversations"][-1]["value"] + tokenizer.eos_token
        assert (batch["input_ids"][i][batch["attention_mask"][i] == 0] == tokenizer.pad_token_id).all()
    assert batch["pixel_values"].shape == (3, 3, 64, 64)


@pytest.mark.slow
def test_csv_row_to_processor_inputs_end_to_end(tiny, tmp_path):
    from PIL import Image

    _, processor = tiny
    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "x.png")  # any size: the processor resizes
    rows = csv_to_llava_rows([VqaRow("x.png", "¿De qué color es?", "rojo", "color")])
    batch = notebook_collator(processor, tmp_path)(rows)
    text = processor.tokenizer.decode(batch["input_ids"][0])
    assert text.count(IMAGE_TOKEN) == 4 and "¿De qué color es?" in text and text.endswith("rojo<|im_end|>")


def test_exercise_check_accepts_the_formula_and_rejects_wrong_ones(capsys):
    def right(size, patch, strategy):
        return (size // patch) ** 2 + (strategy == "full")

    assert check_image_token_formula(right) is True
    assert "¡Bien hecho!" in capsys.readouterr().out
    assert check_image_token_formula(lambda size, patch, strategy: (size // patch) ** 2) is False  # forgets CLS
    assert check_image_token_formula(lambda size, patch, strategy: size // patch) is False
    assert check_image_token_formula(lambda *args: 1 / 0) is False  # an exception is a failed check, not a crash
    assert "❌" in capsys.readouterr().out
