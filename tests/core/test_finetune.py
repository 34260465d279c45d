"""Fine-tuning plumbing: loss curves, greedy generation, adapters, static kwarg checks,
and notebook 03's full-profile configuration against the installed libraries."""

from __future__ import annotations

import inspect
import json

import matplotlib

matplotlib.use("Agg")

import pytest

from course_tools.notebook_cells import TaggedCellError, run_tagged_cells, tagged_cell_sources
from course_tools.static_checks import unknown_keywords
from utils.core.finetune import (
    epoch_plan,
    generate_greedy,
    keep_trainable_fp32,
    length_summary,
    loss_curve,
    plot_length_histogram,
    plot_loss_curves,
    save_adapter,
    supervised_text,
)
from utils.core.paths import notebooks_dir, repo_root
from utils.core.settings import get_settings

NOTEBOOK = notebooks_dir() / "03_datos_buenos_vs_malos.ipynb"
MINI = get_settings("mini").good_bad


@pytest.fixture(scope="module")
def smollm2():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from utils.core.assets import resolve_model

    path = resolve_model(MINI.base_model)
    return path, AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)


# --------------------------------------------------------------------------- curves and lengths


def test_loss_curve_keeps_only_training_losses():
    history = [
        {"loss": 2.5, "step": 4, "epoch": 0.2},
        {"eval_loss": 2.0, "step": 4},
        {"loss": 1.5, "step": 8, "epoch": 0.4},
        {"train_loss": 2.0, "step": 8, "train_runtime": 10.0},
    ]
    curve = loss_curve(history)
    assert curve.steps == [4, 8] and curve.losses == [2.5, 1.5]
    assert (curve.first, curve.last) == (2.5, 1.5)
    with pytest.raises(ValueError, match="logging_steps"):
        loss_curve([{"train_loss": 1.0, "step": 3}])
    ax = plot_loss_curves({"buenos": curve, "malos": loss_curve(history[:1])})
    assert len(ax.get_lines()) == 2 and ax.get_legend() is not None
    ax = plot_loss_curves({"buenos": curve}, epoch_steps=3)
    assert len(ax.get_lines()) == 1 + 2  # the curve and epoch ends at steps 3 and 6


def test_epoch_plan_counts_the_last_partial_batch():
    full_hub = epoch_plan(20, 8, 120)  # the old full settings: 20 pairs per Hub set
    assert full_hub.steps_per_epoch == 3 and full_hub.epochs == 40
    mini = epoch_plan(160, 8, 36)
    assert mini.steps_per_epoch == 20 and mini.epochs == pytest.approx(1.8)
    assert "una época son 20 pasos" in mini.describe() and "1.8 veces" in mini.describe()
    with pytest.raises(ValueError):
        epoch_plan(0, 8, 10)


def test_length_summary_and_histogram():
    lengths = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert length_summary(lengths) == {"min": 10.0, "p50": 50.0, "p95": 100.0, "max": 100.0}
    with pytest.raises(ValueError):
        length_summary([])
    ax = plot_length_histogram(lengths, max_length=96)
    assert "max_length = 96" in [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------- generation


def test_greedy_generation_is_deterministic_and_batch_independent(smollm2):
    _, tokenizer, model = smollm2
    conversations = [
        [{"role": "user", "content": "Say hello."}],
        [
            {"role": "system", "content": MINI.system_prompt},
            {"role": "user", "content": "The cat is sleeping on the sofa."},
        ],
    ]
    side = tokenizer.padding_side
    together = generate_greedy(model, tokenizer, conversations, max_new_tokens=6, batch_size=2)
    one_by_one = generate_greedy(model, tokenizer, conversations, max_new_tokens=6, batch_size=1)
    assert together == one_by_one  # left padding does not change what the model writes
    assert all(isinstance(t, str) and t and "<|im_" not in t for t in together)
    assert tokenizer.padding_side == side and not model.training


def test_generation_needs_a_pad_token(smollm2):
    _, tokenizer, model = smollm2
    import copy

    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(ValueError, match="pad token"):
        generate_greedy(model, no_pad, [[{"role": "user", "content": "hi"}]], max_new_tokens=2)


def test_supervised_text_drops_masked_tokens(smollm2):
    _, tokenizer, _ = smollm2
    ids = tokenizer("Hola mundo<|im_end|>", add_special_tokens=False)["input_ids"]
    labels = [-100] + ids[1:]
    assert supervised_text(tokenizer, ids, labels) == tokenizer.decode(ids[1:])
    assert supervised_text(tokenizer, ids, labels).endswith("<|im_end|>")


# --------------------------------------------------------------------------- adapters


def test_one_step_adapter_saves_and_reloads_to_non_base_outputs(tmp_path):
    """Two optimizer steps only: enough to make the adapter non-trivial, fast on CPU.

    The base is a 2-layer random Qwen2 (the class and module names of Qwen2.5, the full
    profile's base) with SmolLM2's ChatML tokenizer: saving and reloading are the same
    calls for any size.  Merging is written in notebooks 03 and 04 (``merge_and_unload``)
    and checked there."""
    from peft import LoraConfig, PeftModel
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from utils.good_bad.translation_pairs import load_pairs, prompt_messages, to_chat_dataset

    path = str(tmp_path / "base")
    tokenizer = _tiny_qwen2(path)
    pairs = load_pairs(MINI.good_dataset)[:4]
    args = _tiny_sft_config(tmp_path)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    trainer = SFTTrainer(
        model=path,
        args=args,
        train_dataset=to_chat_dataset(pairs, MINI.system_prompt),
        processing_class=tokenizer,
        peft_config=lora,
    )
    trainer.train()
    folder = save_adapter(trainer, tmp_path / "adapter", extra={"seed": 7})
    assert (folder / "adapter_config.json").is_file() and (folder / "adapter_model.safetensors").is_file()
    info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    assert info["seed"] == 7 and info["global_step"] == 2 and loss_curve(info["log_history"]).steps == [1, 2]

    conversations = [prompt_messages(p.source, MINI.system_prompt) for p in pairs[:2]]
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(path), str(folder))
    adapter_out = generate_greedy(reloaded, tokenizer, conversations, max_new_tokens=8)
    base = AutoModelForCausalLM.from_pretrained(path)
    assert generate_greedy(base, tokenizer, conversations, max_new_tokens=8) != adapter_out  # the adapter matters


def test_a_saved_adapter_is_reused_only_by_a_trainer_with_its_fingerprint(tmp_path):
    """Issue 13: test_real_pairs_03 scores notebook 03's saved adapters instead of training them again,
    but only when ``training.json`` carries the fingerprint of the trainer it would train.  The
    fingerprint is the same before and after training and changes with a setting or the data; a
    reused adapter loads the trained weights, a refused one leaves the new trainer as it was."""
    import importlib.util

    import torch
    from peft import LoraConfig
    from trl import SFTTrainer

    from utils.core.finetune import training_fingerprint
    from utils.good_bad.translation_pairs import load_pairs, to_chat_dataset

    spec = importlib.util.spec_from_file_location("good_bad_seeds", repo_root() / "benchmarks" / "good_bad_seeds.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = str(tmp_path / "base")
    tokenizer = _tiny_qwen2(path)
    pairs = load_pairs(MINI.good_dataset)[:4]

    def trainer(rows=pairs, **changes):
        args = _tiny_sft_config(tmp_path, **{"seed": 3, **changes})
        lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
        return SFTTrainer(
            model=path,
            args=args,
            train_dataset=to_chat_dataset(rows, MINI.system_prompt),
            processing_class=tokenizer,
            peft_config=lora,
        )

    def lora_weights(t):
        return {n: p.detach().clone() for n, p in t.model.named_parameters() if "lora_" in n}

    trained = trainer()
    before = training_fingerprint(trained)
    trained.train()
    assert training_fingerprint(trained) == before
    folder = save_adapter(trained, tmp_path / "adapter")
    assert json.loads((folder / "training.json").read_text(encoding="utf-8"))["fingerprint"] == before

    for other in (trainer(learning_rate=2e-3), trainer(seed=4), trainer(rows=pairs[:3]), trainer(max_steps=3)):
        untouched = lora_weights(other)
        assert bench.reuse_adapter(other, folder) != ""
        assert all(torch.equal(untouched[n], p) for n, p in lora_weights(other).items())

    same = trainer()
    assert bench.reuse_adapter(same, folder) == ""
    loaded, wanted = lora_weights(same), lora_weights(trained)
    assert loaded.keys() == wanted.keys() and all(torch.equal(loaded[n], wanted[n]) for n in wanted)
    assert same.state.global_step == 2 and loss_curve(same.state.log_history).steps == [1, 2]
    assert bench.reuse_adapter(trainer(), tmp_path / "nothing-here") != ""


# --------------------------------------------------------------------------- static checks


def _library_targets() -> dict:
    from peft import LoraConfig
    from transformers import AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from utils.core import finetune
    from utils.good_bad import mt_eval, translation_pairs

    targets = {
        "LoraConfig": LoraConfig,
        "SFTConfig": SFTConfig,
        "SFTTrainer": SFTTrainer,
        "BitsAndBytesConfig": BitsAndBytesConfig,
        "AutoTokenizer.from_pretrained": AutoTokenizer.from_pretrained,
    }
    for module in (finetune, mt_eval, translation_pairs):  # the course's own helpers, too
        targets |= {
            name: obj
            for name, obj in vars(module).items()
            if inspect.isfunction(obj) and obj.__module__ == module.__name__
        }
    return targets


def test_every_keyword_the_notebook_passes_is_accepted():
    """The full profile cannot run here (GPU, Hub): check its calls against the pinned versions."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    targets = _library_targets()
    problems = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            problems += unknown_keywords("".join(cell["source"]), targets, where=f"cell {index}")
    finetune_src = (repo_root() / "src" / "utils" / "core" / "finetune.py").read_text(encoding="utf-8")
    problems += unknown_keywords(finetune_src, targets, where="finetune.py")
    assert not problems, "\n".join(map(str, problems))
    assert unknown_keywords("SFTConfig(max_seq_length=3)", targets, where="x"), "the check must catch old names"


def test_full_profile_configuration_builds_with_the_installed_versions():
    """Run the notebook's configuration cell with the full settings (4-bit, fp16)."""
    full = get_settings("full").good_bad
    ns = run_tagged_cells(
        NOTEBOOK,
        ["good-bad-config"],
        {
            "cfg": full,
            "base_path": full.base_model,
            "tokenizer": None,
            "SYSTEM_PROMPT": full.system_prompt,
            "to_chat_dataset": None,
        },
    )
    bnb, lora, sft = ns["bnb_config"], ns["lora_config"], ns["sft_config"]
    assert bnb is not None and bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4"
    assert str(bnb.bnb_4bit_compute_dtype).endswith("float16")
    assert sft.fp16 and not sft.bf16 and sft.activation_checkpointing
    assert sft.max_steps == full.max_steps and sft.learning_rate == full.learning_rate
    assert lora.r == full.lora_r and lora.task_type == "CAUSAL_LM"


def test_mini_configuration_is_cpu_fp32_weights_and_both_runs_share_it():
    """Mini: fp32 weights; bf16 autocast exactly where the CPU computes bf16 natively (issue 14)."""
    import torch

    from utils.core.finetune import cpu_computes_bf16

    ns = run_tagged_cells(NOTEBOOK, ["good-bad-setup", "good-bad-config"], {"cfg": MINI})
    sft = ns["sft_config"]
    assert ns["bnb_config"] is None and not sft.fp16 and sft.use_cpu
    assert sft.model_init_kwargs == {"dtype": torch.float32}
    assert sft.bf16 == cpu_computes_bf16() and ns["CALCULO"] == ("bf16" if cpu_computes_bf16() else "fp32")
    assert not sft.activation_checkpointing and sft.completion_only_loss
    assert sft.seed == sft.data_seed == MINI.seed and sft.max_steps == MINI.max_steps
    assert ns["tokenizer"].eos_token == "<|im_end|>"


def test_missing_tag_is_a_clear_error(tmp_path):
    path = tmp_path / "n.ipynb"
    path.write_text(
        json.dumps({"cells": [{"cell_type": "code", "metadata": {"tags": ["a"]}, "source": ["x = 1\n", "y = x + 1"]}]})
    )
    assert tagged_cell_sources(path, "a") == ["x = 1\ny = x + 1"]
    assert run_tagged_cells(path, ["a"])["y"] == 2
    with pytest.raises(TaggedCellError, match="tagged 'b'"):
        run_tagged_cells(path, ["b"])


def _tiny_sft_config(tmp_path, **changes):
    """The SFTConfig of the tiny-model tests: 2 steps of 2 rows at lr 1e-3, fp32, nothing saved or reported."""
    from trl import SFTConfig

    settings = {"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-3, **changes}
    return SFTConfig(
        output_dir=str(tmp_path / "ckpt"),
        **settings,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        bf16=False,
        activation_checkpointing=False,
        disable_tqdm=True,
    )


def _tiny_qwen2(folder):
    """A 2-layer random Qwen2ForCausalLM (Qwen2.5's class and module names) with a ChatML tokenizer."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from utils.core.assets import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MINI.base_model))  # SmolLM2: ChatML like Qwen2.5
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.mark.slow
def test_qlora_with_fp16_amp_keeps_every_trainable_parameter_fp32(tmp_path, monkeypatch):
    """Issue 11.2: TRL 1.16 casts a quantized model's LoRA weights to bfloat16 in SFTTrainer.__init__;
    the fp16 GradScaler of a T4 has no bfloat16 kernel.  The notebook's trainer must hand fp32
    trainable weights to fp16 AMP.  Built here with the full profile's own configuration cell
    (4-bit bitsandbytes runs on CPU); only the model is a tiny stand-in."""
    import torch
    from bitsandbytes.nn import Linear4bit

    from utils.good_bad.translation_pairs import load_pairs, to_chat_dataset

    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path / "build"))
    full = get_settings("full").good_bad
    assert full.load_in_4bit and full.precision == "fp16"
    tokenizer = _tiny_qwen2(tmp_path / "qwen")
    ns = run_tagged_cells(
        NOTEBOOK,
        ["good-bad-config"],
        {
            "cfg": full,
            "base_path": str(tmp_path / "qwen"),
            "tokenizer": tokenizer,
            "SYSTEM_PROMPT": full.system_prompt,
            "to_chat_dataset": to_chat_dataset,
        },
    )
    assert ns["sft_config"].fp16
    trainer = ns["crear_trainer"](load_pairs(MINI.good_dataset)[:8])
    assert any(isinstance(m, Linear4bit) for m in trainer.model.modules()), "the base must be 4-bit"
    trainable = {name: p.dtype for name, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)
    assert set(trainable.values()) == {torch.float32}, trainable


def test_keep_trainable_fp32_casts_only_trainable_parameters():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)).to(torch.bfloat16)
    model[0].requires_grad_(False)
    assert keep_trainable_fp32(model) == 2
    assert model[0].weight.dtype == torch.bfloat16 and model[1].weight.dtype == torch.float32
    assert keep_trainable_fp32(model) == 0


HUB_SAMPLE_PAIRS = 20  # mrm8488/en_es_sample_good and _bad: num_examples 20 (their dataset cards)


def test_full_profile_makes_a_bounded_number_of_epochs_over_the_hub_samples():
    """Issue 11.6: 120 steps of 8 over 20 pairs were 40 epochs, and nothing said so."""
    full = get_settings("full").good_bad
    plan = epoch_plan(HUB_SAMPLE_PAIRS, full.batch_size, full.max_steps)
    assert 3 <= plan.epochs <= 12, plan.describe()
    assert full.logging_steps <= plan.steps_per_epoch  # at least one loss point per epoch


def test_notebook_prose_states_no_epoch_arithmetic_of_one_profile():
    """The epoch numbers are printed from the data the run uses, not written for mini in the prose."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    prose = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "una época son 20 pasos" not in prose and "después del paso 20" not in prose
    code = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "epoch_plan(len(buenos), cfg.batch_size, cfg.max_steps)" in code


def test_training_precision_resolves_auto_only_on_a_cpu_and_keeps_explicit_values(monkeypatch):
    """What notebooks 03 and 04 compute in (``CALCULO``): "auto" follows the CPU; anything else is kept."""
    from utils.core import finetune

    for native in (True, False):
        monkeypatch.setattr(finetune, "cpu_computes_bf16", lambda native=native: native)
        assert finetune.training_precision("auto", on_cpu=True) == ("bf16" if native else "fp32")
        assert finetune.training_precision("auto", on_cpu=False) == "fp32"
        for explicit in ("fp16", "bf16", "fp32"):
            assert finetune.training_precision(explicit, on_cpu=True) == explicit
            assert finetune.training_precision(explicit, on_cpu=False) == explicit
