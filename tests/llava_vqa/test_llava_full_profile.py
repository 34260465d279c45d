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

from course_tools.static_checks import code_cells, parse_code
from utils.core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04_llava_vqa_lora.ipynb"


def notebook_call_source(name: str, assigned_to: str | None = None) -> str:
    """Source of the one call ``name(...)`` in the notebook's code cells (the one assigned to
    ``assigned_to`` when the notebook has several, as the two stages' ``TrainingArguments``)."""
    tree = parse_code("\n".join(source for _, source in code_cells(NOTEBOOK)))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]
    if assigned_to is not None:
        targets = {
            id(n.value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == assigned_to for t in n.targets)
        }
        calls = [c for c in calls if id(c) in targets]
    (call,) = calls
    return ast.unparse(call)


def popped_keywords(fn) -> set[str]:
    """Named parameters of a ``**kwargs`` function plus the names its body pops from kwargs.

    ``from_pretrained`` reads ``dtype``, ``device_map``… with ``kwargs.pop("name", …)``, so
    :func:`course_tools.static_checks.accepted_keywords` (which skips ``**kwargs`` functions) cannot
    check them; the 4-bit loading path of the full profile goes through it.
    """
    names = {n for n, p in inspect.signature(fn).parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names | set(re.findall(r"kwargs\.pop\(\s*[\"'](\w+)[\"']", inspect.getsource(fn)))


def test_popped_keywords_sees_what_from_pretrained_reads():
    from transformers import LlavaForConditionalGeneration

    names = popped_keywords(LlavaForConditionalGeneration.from_pretrained)
    assert {"dtype", "device_map", "quantization_config"} <= names
    assert "load_in_4bit_typo" not in names


def notebook_bnb_config(cfg):
    """The notebook's own ``BitsAndBytesConfig(...)`` expression evaluated with ``cfg``."""
    import torch
    from transformers import BitsAndBytesConfig

    from utils.llava_vqa.llava_model import BNB_SKIP_MODULES

    namespace = {"cfg": cfg, "torch": torch, "BitsAndBytesConfig": BitsAndBytesConfig, "list": list}
    namespace["BNB_SKIP_MODULES"] = BNB_SKIP_MODULES
    return eval(notebook_call_source("BitsAndBytesConfig"), namespace)


def notebook_from_pretrained_keywords() -> set[str]:
    """Keywords of every ``LlavaForConditionalGeneration.from_pretrained(...)`` call in the notebook."""
    tree = parse_code("\n".join(source for _, source in code_cells(NOTEBOOK)))
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "from_pretrained"
        and getattr(n.func.value, "id", None) == "LlavaForConditionalGeneration"
    ]
    assert len(calls) >= 3  # section 3, the training cell, the merge
    return {k.arg for call in calls for k in call.keywords}


def test_notebook_4bit_loading_arguments_are_accepted():
    from transformers import LlavaForConditionalGeneration

    full = get_settings("full").llava
    config = notebook_bnb_config(full)
    assert config.load_in_4bit and config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert str(config.bnb_4bit_compute_dtype).endswith(full.dtype)
    keywords = notebook_from_pretrained_keywords()
    assert {"quantization_config", "dtype", "device_map"} <= keywords
    assert keywords <= popped_keywords(LlavaForConditionalGeneration.from_pretrained)


def test_notebook_lora_and_training_arguments_build_with_full_settings(tmp_path):
    from peft import LoraConfig
    from transformers import TrainingArguments

    from utils.llava_vqa.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE

    full = get_settings("full").llava
    namespace = {
        "cfg": full,
        "run_dir": tmp_path,
        "str": str,
        "LoraConfig": LoraConfig,
        "TrainingArguments": TrainingArguments,
        "LANGUAGE_MODEL_LORA_TARGETS": LANGUAGE_MODEL_LORA_TARGETS,
        "PROJECTOR_MODULE": PROJECTOR_MODULE,
        "EN_CPU": False,  # Colab's GPU
        "CALCULO": full.precision,
    }
    lora = eval(notebook_call_source("LoraConfig"), namespace)
    assert (lora.r, lora.lora_alpha) == (full.lora_r, full.lora_alpha)
    args = eval(notebook_call_source("TrainingArguments", "args"), namespace)
    assert args.fp16 and args.activation_checkpointing and args.max_steps == full.max_steps
    assert not args.bf16 and full.precision == "fp16", "full trains in fp16 on the GPU"
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == full.batch_size * full.grad_accum


def test_stage_one_is_mini_only_and_its_arguments_build(tmp_path):
    """Full skips LLaVA-1.5's stage 1 (its projector is aligned); mini's stage-1 arguments build."""
    from transformers import TrainingArguments

    assert get_settings("full").llava.align_steps == 0
    mini = get_settings("mini").llava
    assert mini.align_steps > 0
    namespace = {"cfg": mini, "projector_file": tmp_path / "mm_projector.pt", "str": str, "min": min}
    assert mini.precision == "auto"  # on a CPU with native bf16, the cell resolves it to "bf16"
    namespace |= {"TrainingArguments": TrainingArguments, "EN_CPU": True, "CALCULO": "bf16"}
    args = eval(notebook_call_source("TrainingArguments", "align_args"), namespace)
    assert (args.max_steps, args.learning_rate) == (mini.align_steps, mini.align_lr)
    assert args.use_cpu and args.bf16
    assert 0 < args.logging_steps <= mini.align_steps


def test_lora_targets_only_the_language_model_of_a_llava_15_shaped_model():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from utils.llava_vqa.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE

    # llava-1.5-7b's shapes, shrunk in depth so the meta-device build is instant.
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=2,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            hidden_size=4096, intermediate_size=11008, num_hidden_layers=2, num_attention_heads=32, vocab_size=32064
        ),
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    full = get_settings("full").llava
    peft_model = get_peft_model(
        model,
        LoraConfig(
            r=full.lora_r,
            lora_alpha=full.lora_alpha,
            target_modules=LANGUAGE_MODEL_LORA_TARGETS,
            modules_to_save=[PROJECTOR_MODULE],
            task_type="CAUSAL_LM",
        ),
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
    assert not (cfg.precision == "fp16" or cfg.load_in_4bit) or profile == "full", "mini runs on CPU"


def notebook_lora_config(cfg):
    """The notebook's own ``LoraConfig(...)`` expression evaluated with ``cfg``."""
    from peft import LoraConfig

    from utils.llava_vqa.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE

    namespace = {
        "cfg": cfg,
        "LoraConfig": LoraConfig,
        "LANGUAGE_MODEL_LORA_TARGETS": LANGUAGE_MODEL_LORA_TARGETS,
        "PROJECTOR_MODULE": PROJECTOR_MODULE,
    }
    return eval(notebook_call_source("LoraConfig"), namespace)


def tiny_llava_shaped(folder: Path) -> Path:
    """A tiny random LlavaForConditionalGeneration (real module names, CLIP-L/336 geometry) saved to ``folder``."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=336,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            vocab_size=320,
        ),
        image_token_index=300,
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(folder)
    return folder


@pytest.mark.filterwarnings("ignore")
def test_4bit_model_keeps_the_projector_trainable_in_float(tmp_path):
    """Issue 11.1: with 4-bit loading the projector was quantized too, and
    ``modules_to_save=["multi_modal_projector"]`` raised "only Tensors of floating point
    dtype can require gradients" in ``get_peft_model``."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import LlavaForConditionalGeneration

    full = get_settings("full").llava
    assert full.load_in_4bit
    folder = tiny_llava_shaped(tmp_path / "llava")
    model = LlavaForConditionalGeneration.from_pretrained(  # the notebook's call with the full settings
        folder, dtype=getattr(torch, full.dtype), quantization_config=notebook_bnb_config(full), device_map="auto"
    )
    kinds = {name: type(module).__name__ for name, module in model.named_modules()}
    assert kinds["model.language_model.layers.0.self_attn.q_proj"] == "Linear4bit"
    assert kinds["model.language_model.layers.1.mlp.down_proj"] == "Linear4bit"
    for kept in (
        "model.multi_modal_projector.linear_1",
        "model.multi_modal_projector.linear_2",
        "lm_head",
        "model.vision_tower.encoder.layers.0.self_attn.q_proj",
    ):
        assert kinds[kept] == "Linear", (kept, kinds[kept])
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=full.gradient_checkpointing)
    peft_model = get_peft_model(model, notebook_lora_config(full))
    projector = {n: p for n, p in peft_model.named_parameters() if "multi_modal_projector" in n and p.requires_grad}
    assert projector and all(p.dtype == torch.float32 for p in projector.values()), projector
    assert not [n for n, p in peft_model.named_parameters() if p.requires_grad and "vision_tower" in n]


@pytest.mark.filterwarnings("ignore")
def test_a_bare_module_name_is_not_skipped_by_bitsandbytes(tmp_path):
    """Why BNB_SKIP_MODULES holds full paths: transformers 5.23 does not match a bare
    ``"multi_modal_projector"`` (if this starts failing, the short name works again)."""
    from transformers import LlavaForConditionalGeneration

    config = notebook_bnb_config(get_settings("full").llava)
    config.llm_int8_skip_modules = ["multi_modal_projector", "lm_head"]
    model = LlavaForConditionalGeneration.from_pretrained(
        tiny_llava_shaped(tmp_path / "llava"), quantization_config=config, device_map="cpu"
    )
    assert type(model.model.multi_modal_projector.linear_1).__name__ == "Linear4bit"


def llava_15_7b_on_meta():
    """llava-1.5-7b-hf's architecture at full size (CLIP ViT-L/336 + Vicuna-7B), no weights."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        text_config=LlamaConfig(
            hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32064
        ),
    )
    with torch.device("meta"):
        return LlavaForConditionalGeneration(config)


def test_full_qlora_settings_fit_a_t4_with_margin():
    """Issue 11.8: r=128 on all 7 projections × 32 layers was ~320 M trainable parameters
    and an estimated peak near a T4's limit.  The full settings must stay ≤ 70 % of it,
    and the resource card must show this very estimate."""
    from peft import get_peft_model

    from utils.llava_vqa.llava_model import T4_USABLE_GB, estimate_qlora_memory

    full = get_settings("full").llava
    model = llava_15_7b_on_meta()
    assert 7.0e9 < sum(p.numel() for p in model.parameters()) < 7.1e9  # llava-1.5-7b: 7.06 B
    peft_model = get_peft_model(model, notebook_lora_config(full))
    seq_len = 576 + 64  # 576 image tokens (336 px / 14 px patches, CLS dropped) + the question and answer
    estimate = estimate_qlora_memory(
        peft_model, batch_size=full.batch_size, seq_len=seq_len, checkpointing=full.gradient_checkpointing
    )
    lora = sum(p.numel() for n, p in peft_model.named_parameters() if "lora_" in n)
    assert lora == 32 * full.lora_r * (4 * 2 * 4096 + 3 * (4096 + 11008))  # r × (in + out) per projection
    assert estimate.total_gb <= 0.7 * T4_USABLE_GB, "\n".join(estimate.lines())
    card = NOTEBOOK.read_text(encoding="utf-8")
    assert f"~{estimate.total_gb:.1f} GB VRAM (estimado)".replace(".", ",") in card, "\n".join(estimate.lines())
    assert f"{estimate.trainable_params / 1e6:,.0f} M".replace(",", " ") in card
