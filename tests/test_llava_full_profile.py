"""Notebook 04, full profile, checked statically (no GPU and no Hub here).

The full profile runs the same cells with other settings.  These tests check that every
keyword argument notebook 04 passes to a library is accepted by the installed version,
that the notebook's ``LoraConfig`` and ``TrainingArguments`` build with the *full*
settings, and that the LoRA target regex hits exactly the language model's linear layers
of a llava-1.5-7b-shaped model (built on the meta device, no weights).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from pathlib import Path

import pytest

from utils.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_llava_vqa_lora.ipynb"


def notebook_tree() -> ast.Module:
    """The notebook's code cells as one Python module (IPython ``!``/``%`` lines dropped)."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    lines = []
    for cell in cells:
        if cell["cell_type"] == "code":
            for line in "".join(cell["source"]).splitlines():
                lines.append("" if line.lstrip().startswith(("!", "%")) else line)
    return ast.parse("\n".join(lines))


def calls_named(tree: ast.Module, name: str) -> list[ast.Call]:
    """Calls of ``name(...)`` or ``something.name(...)`` in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == name:
                found.append(node)
    return found


def accepted_keywords(fn) -> tuple[set[str], bool]:
    """Named parameters of ``fn`` and whether it also takes ``**kwargs``.

    For ``**kwargs`` functions the names the body pops (``kwargs.pop("name"``) count as
    accepted too: that is how ``from_pretrained`` reads ``dtype`` or ``device_map``.
    """
    sig = inspect.signature(fn)
    names = {n for n, p in sig.parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    has_var = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if has_var:
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = ""
        names |= set(re.findall(r"kwargs\.pop\(\s*[\"'](\w+)[\"']", source))
    return names, has_var


def library_callables():
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration, Trainer, TrainingArguments

    return {
        "LoraConfig": LoraConfig,
        "TrainingArguments": TrainingArguments,
        "Trainer": Trainer,
        "BitsAndBytesConfig": BitsAndBytesConfig,
        "get_peft_model": get_peft_model,
        "prepare_model_for_kbit_training": prepare_model_for_kbit_training,
        "from_pretrained": LlavaForConditionalGeneration.from_pretrained,
        "PeftModel.from_pretrained": PeftModel.from_pretrained,
    }


def test_accepted_keywords_sees_popped_kwargs_and_rejects_unknown_names():
    from transformers import LlavaForConditionalGeneration

    names, has_var = accepted_keywords(LlavaForConditionalGeneration.from_pretrained)
    assert has_var and {"dtype", "device_map", "quantization_config"} <= names
    assert "load_in_4bit_typo" not in names


def test_every_keyword_the_notebook_passes_to_a_library_is_accepted():
    tree = notebook_tree()
    checked = 0
    for name, fn in library_callables().items():
        short = name.split(".")[-1]
        names, _ = accepted_keywords(fn)
        for call in calls_named(tree, short):
            if name == "PeftModel.from_pretrained" and not (
                isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "PeftModel"
            ):
                continue
            if name == "from_pretrained" and isinstance(call.func, ast.Attribute) and getattr(call.func.value, "id", "") == "PeftModel":
                continue
            for keyword in call.keywords:
                if keyword.arg is None:  # **kwargs: checked where the dict is built
                    continue
                assert keyword.arg in names, f"notebook passes {keyword.arg}= to {name}, which does not accept it"
                checked += 1
    assert checked >= 25, f"only {checked} keyword arguments found: did the notebook change?"


def test_helper_kwargs_for_4bit_loading_are_accepted():
    from transformers import BitsAndBytesConfig, LlavaForConditionalGeneration

    from utils.llava_model import bnb_4bit_settings, from_pretrained_kwargs

    bnb_names, _ = accepted_keywords(BitsAndBytesConfig.__init__)
    assert set(bnb_4bit_settings()) <= bnb_names
    config = BitsAndBytesConfig(**bnb_4bit_settings())
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    full = get_settings("full").llava
    kwargs = from_pretrained_kwargs(load_in_4bit=full.load_in_4bit, dtype=full.dtype)
    names, _ = accepted_keywords(LlavaForConditionalGeneration.from_pretrained)
    assert set(kwargs) <= names and isinstance(kwargs["quantization_config"], BitsAndBytesConfig)
    assert kwargs["device_map"] == "auto"


def _notebook_call_source(name: str) -> str:
    tree = notebook_tree()
    (call,) = calls_named(tree, name)
    return ast.unparse(call)


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
    lora = eval(_notebook_call_source("LoraConfig"), namespace)  # noqa: S307 — the notebook's own expression
    assert (lora.r, lora.lora_alpha) == (128, 256)
    args = eval(_notebook_call_source("TrainingArguments"), namespace)  # noqa: S307
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
