"""Notebook 04, full profile, checked statically (no GPU and no Hub here).

The full profile runs the same cells with other settings.  ``test_static_checks`` checks
the keyword arguments of every notebook; these tests add what is specific to notebook 04:
the 4-bit loading arguments, that the notebook's ``LoraConfig`` and ``TrainingArguments`` build with the *full*
settings, and that the LoRA target regex hits exactly the language model's linear layers
of a llava-1.5-7b-shaped model (built on the meta device, no weights).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from utils.settings import get_settings
from utils.static_checks import code_cells, parse_code

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_llava_vqa_lora.ipynb"


def notebook_call_source(name: str) -> str:
    """Source of the one call ``name(...)`` in the notebook's code cells."""
    tree = parse_code("\n".join(source for _, source in code_cells(NOTEBOOK)))
    (call,) = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]
    return ast.unparse(call)


def popped_keywords(fn) -> set[str]:
    """Named parameters of a ``**kwargs`` function plus the names its body pops from kwargs.

    ``from_pretrained`` reads ``dtype``, ``device_map``… with ``kwargs.pop("name", …)``, so
    :func:`utils.static_checks.accepted_keywords` (which skips ``**kwargs`` functions) cannot
    check them; the 4-bit loading path of the full profile goes through it.
    """
    names = {n for n, p in inspect.signature(fn).parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names | set(re.findall(r"kwargs\.pop\(\s*[\"'](\w+)[\"']", inspect.getsource(fn)))


def test_popped_keywords_sees_what_from_pretrained_reads():
    from transformers import LlavaForConditionalGeneration

    names = popped_keywords(LlavaForConditionalGeneration.from_pretrained)
    assert {"dtype", "device_map", "quantization_config"} <= names
    assert "load_in_4bit_typo" not in names


def test_helper_kwargs_for_4bit_loading_are_accepted():
    from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

    from utils.llava_model import bnb_4bit_settings, from_pretrained_kwargs

    assert set(bnb_4bit_settings()) <= popped_keywords(BitsAndBytesConfig.__init__)
    config = BitsAndBytesConfig(**bnb_4bit_settings())
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    full = get_settings("full").llava
    kwargs = from_pretrained_kwargs(load_in_4bit=full.load_in_4bit, dtype=full.dtype)
    assert set(kwargs) <= popped_keywords(LlavaForConditionalGeneration.from_pretrained) and isinstance(kwargs["quantization_config"], BitsAndBytesConfig)
    assert kwargs["device_map"] == "auto"


def test_notebook_lora_and_training_arguments_build_with_full_settings(tmp_path):
    from peft import LoraConfig
    from transformers import TrainingArguments

    from utils.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE

    full = get_settings("full").llava
    namespace = {
        "cfg": full,
        "run_dir": tmp_path,
        "str": str,
        "LoraConfig": LoraConfig,
        "TrainingArguments": TrainingArguments,
        "LANGUAGE_MODEL_LORA_TARGETS": LANGUAGE_MODEL_LORA_TARGETS,
        "PROJECTOR_MODULE": PROJECTOR_MODULE,
    }
    lora = eval(notebook_call_source("LoraConfig"), namespace)  # noqa: S307 — the notebook's own expression
    assert (lora.r, lora.lora_alpha) == (128, 256)
    args = eval(notebook_call_source("TrainingArguments"), namespace)  # noqa: S307
    assert args.fp16 and args.activation_checkpointing and args.max_steps == full.max_steps
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == full.batch_size * full.grad_accum


def test_lora_targets_only_the_language_model_of_a_llava_15_shaped_model():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from utils.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE

    # llava-1.5-7b's shapes, shrunk in depth so the meta-device build is instant.
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=2,
                                       num_attention_heads=16, image_size=336, patch_size=14),
        text_config=LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=2,
                                num_attention_heads=32, vocab_size=32064),
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    full = get_settings("full").llava
    peft_model = get_peft_model(
        model,
        LoraConfig(r=full.lora_r, lora_alpha=full.lora_alpha, target_modules=LANGUAGE_MODEL_LORA_TARGETS,
                   modules_to_save=[PROJECTOR_MODULE], task_type="CAUSAL_LM"),
    )
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in peft_model.named_modules() if n.endswith(".lora_A")}
    assert len(adapted) == 2 * 7, sorted(adapted)
    assert all(".language_model." in n for n in adapted)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert not [n for n in trainable if "vision_tower" in n], "nothing in the vision tower may be trainable"
    assert any(PROJECTOR_MODULE in n and p.requires_grad for n, p in peft_model.named_parameters())


@pytest.mark.parametrize("profile", ["mini", "full"])
def test_llava_settings_are_consistent(profile):
    cfg = get_settings(profile).llava
    assert cfg.train_size >= 300 and cfg.test_size >= 100
    assert cfg.lora_alpha / cfg.lora_r == 2
    assert cfg.merge_check_rows <= cfg.test_size
    assert not (cfg.fp16 or cfg.load_in_4bit) or profile == "full", "mini runs on CPU"
