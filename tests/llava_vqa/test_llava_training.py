"""Notebook 04 training helpers: collator edge cases, resumable training, merge check."""

from __future__ import annotations

import copy
import gc
import weakref
from dataclasses import dataclass

import pytest
from nb04_cells import load_tiny_llava, notebook_collator

from utils.llava_vqa.llava_training import (
    PromptPrefixError,
    answer_suffix,
    last_checkpoint,
    prompt_text,
    settings_fingerprint,
    two_rate_optimizer,
)
from utils.llava_vqa.vqa_data import csv_to_llava_rows, generate_synthetic_vqa, read_csv

#: A llava-1.5-hf style template: "USER: <image>\n... ASSISTANT:", answer followed by a space, no eos.
LLAVA15_STYLE_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}{{ '<image>\n' }}"
    "{% else %}{{ item['text'] + ' ' }}{% endif %}{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


def test_fingerprint_and_checkpoints(tmp_path):
    @dataclass(frozen=True)
    class Section:
        steps: int
        lr: float

    assert settings_fingerprint(Section(1, 0.1)) == settings_fingerprint(Section(1, 0.1))
    assert settings_fingerprint(Section(1, 0.1)) != settings_fingerprint(Section(2, 0.1))
    assert last_checkpoint(tmp_path / "none") is None
    for step in (5, 40, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-final").mkdir()
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-40")


def test_release_frees_what_the_names_held_or_says_what_holds_it():
    """Issue 11.3: ``del trainer, peft_model, model`` left the optimizer holding the trained
    weights; ``release`` sets the names to None and proves, with weak references, that
    the objects are gone."""
    import torch

    from utils.llava_vqa.llava_training import MemoryNotFreedError, release

    model = torch.nn.Linear(4, 4)
    namespace = {"model": model, "optimizer": torch.optim.AdamW(model.parameters()), "trainer": None}
    probe = weakref.ref(model)
    del model
    release(namespace, "model", "optimizer", "trainer", "not_defined_yet")
    assert probe() is None and namespace["model"] is None and namespace["optimizer"] is None

    model = torch.nn.Linear(4, 4)
    namespace = {"model": model}
    kept = [model]  # another name still points at it
    del model
    with pytest.raises(MemoryNotFreedError, match=r"model \(Linear, referido por: list\)"):
        release(namespace, "model")
    assert kept[0] is not None
    gc.collect()


def test_two_rate_optimizer_gives_the_projector_its_own_rate():
    import torch

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.multi_modal_projector = torch.nn.Linear(3, 3)
            self.lora_A = torch.nn.Linear(3, 2)
            self.frozen = torch.nn.Linear(3, 3).requires_grad_(False)

    toy = Toy()
    optimizer = two_rate_optimizer(toy, lr=1e-4, projector_lr=1e-2)
    rates = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert {rates[id(p)] for p in toy.multi_modal_projector.parameters()} == {1e-2}
    assert {rates[id(p)] for p in toy.lora_A.parameters()} == {1e-4}
    assert not any(id(p) in rates for p in toy.frozen.parameters())

    toy.multi_modal_projector.requires_grad_(False)  # forgot modules_to_save
    with pytest.raises(ValueError, match="modules_to_save"):
        two_rate_optimizer(toy, lr=1e-4, projector_lr=1e-2)


@pytest.mark.slow
class TestWithTinyLlava:
    @pytest.fixture(scope="class")
    def setup(self, tmp_path_factory):
        folder = generate_synthetic_vqa(tmp_path_factory.mktemp("vqa"), train_size=8, test_size=4, seed=11)
        rows = csv_to_llava_rows(read_csv(folder / "train.csv"))
        model, processor = load_tiny_llava()
        return folder, rows, model, processor

    def test_answer_suffix_follows_each_template_and_ends_in_eos(self, setup):
        folder, rows, _, processor = setup
        row = rows[0]
        prompt = prompt_text(processor, row)
        assert answer_suffix(processor, row, prompt) == row["conversations"][-1]["value"] + "<|im_end|>"
        other = copy.deepcopy(processor)
        other.chat_template = LLAVA15_STYLE_TEMPLATE
        prompt = prompt_text(other, row)
        assert prompt.endswith("ASSISTANT:")
        assert answer_suffix(other, row, prompt) == " " + row["conversations"][-1]["value"] + "<|im_end|>"
        batch = notebook_collator(other, folder)(rows[:2])
        labelled = batch["labels"][0][batch["labels"][0] != -100]
        assert other.tokenizer.decode(labelled).strip() == row["conversations"][-1]["value"] + "<|im_end|>"

    def test_template_that_is_not_prefix_consistent_is_refused(self, setup):
        folder, rows, _, processor = setup
        odd = copy.deepcopy(processor)
        odd.chat_template = (
            "{% for m in messages %}{{ m['role'] }}|{% for i in m['content'] %}"
            "{% if i['type'] == 'image' %}<image>{% else %}{{ i['text'] }}{% endif %}{% endfor %}{% endfor %}"
            "{% if add_generation_prompt %}GEN:{% endif %}"
        )
        with pytest.raises(PromptPrefixError, match="escribe el prompt de forma distinta"):
            notebook_collator(odd, folder)(rows[:1])

    def test_training_resumes_and_merged_model_matches_the_adapter(self, setup, tmp_path):
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
        from transformers import LlavaForConditionalGeneration, Trainer, TrainerCallback, TrainingArguments

        from utils.llava_vqa.llava_training import (
            LANGUAGE_MODEL_LORA_TARGETS,
            PROJECTOR_MODULE,
            generate_answers,
            train_resumable,
        )

        folder, rows, _, _ = setup
        model, processor = load_tiny_llava()
        config = LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=LANGUAGE_MODEL_LORA_TARGETS,
            modules_to_save=[PROJECTOR_MODULE],
            task_type="CAUSAL_LM",
        )
        peft_model = get_peft_model(model, config)

        steps_run = []

        class CountSteps(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                steps_run.append(state.global_step)

        def trainer(max_steps):
            args = TrainingArguments(
                output_dir=str(tmp_path / "ckpt"),
                max_steps=max_steps,
                per_device_train_batch_size=2,
                learning_rate=1e-2,
                save_steps=1,
                logging_steps=1,
                report_to="none",
                remove_unused_columns=False,
                disable_tqdm=True,
                seed=0,
            )
            return Trainer(
                model=peft_model,
                args=args,
                train_dataset=rows,
                data_collator=notebook_collator(processor, folder),  # encodes, then pads
                callbacks=[CountSteps()],
            )

        train_resumable(trainer(1))
        assert last_checkpoint(tmp_path / "ckpt").endswith("checkpoint-1")
        second = trainer(2)
        train_resumable(second)  # resumes at step 1, runs step 2 only
        assert second.state.global_step == 2
        assert steps_run == [1, 2], "the second run must start from checkpoint-1 and run only step 2"

        peft_model.save_pretrained(tmp_path / "adapter")
        base, _ = load_tiny_llava()
        batch = notebook_collator(processor, folder)(rows[:2])
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        with torch.no_grad():
            base_logits = base(**inputs).logits
        with_adapter = PeftModel.from_pretrained(base, tmp_path / "adapter")
        with torch.no_grad():
            adapter_logits = with_adapter(**inputs).logits
        assert (adapter_logits - base_logits).abs().max() > 1e-2, "the adapter must change the model"
        del base, with_adapter

        # The notebook's section 8: base + adapter, merge_and_unload, save, reload.
        with_adapter = PeftModel.from_pretrained(load_tiny_llava()[0], tmp_path / "adapter")
        answers = generate_answers(with_adapter, processor, rows[:3], folder, max_new_tokens=4, progress=False)
        merged = with_adapter.merge_and_unload()
        merged.save_pretrained(tmp_path / "merged")
        del merged, with_adapter
        merged = LlavaForConditionalGeneration.from_pretrained(tmp_path / "merged")
        assert generate_answers(merged, processor, rows[:3], folder, max_new_tokens=4, progress=False) == answers
        assert not any("lora" in name for name, _ in merged.named_parameters())
        with torch.no_grad():
            merged_logits = merged(**inputs).logits
        assert torch.allclose(merged_logits, adapter_logits, atol=1e-3)

    def test_rerun_after_the_last_step_loads_the_weights_and_trains_nothing(self, setup, tmp_path):
        """Issue 15.2: ``Trainer.train(resume_from_checkpoint=<checkpoint at max_steps>)`` in
        the middle of an epoch ran one more step (global_step 7 of 6) and changed the model."""
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import Trainer, TrainingArguments, set_seed

        from utils.llava_vqa.llava_training import LANGUAGE_MODEL_LORA_TARGETS, PROJECTOR_MODULE, train_resumable

        folder, rows, _, _ = setup
        processor = setup[3]
        trained = []
        for _ in range(2):  # the notebook's training cell, run twice: fresh model and trainer each time
            model, _ = load_tiny_llava()
            set_seed(0)
            peft_model = get_peft_model(
                model,
                LoraConfig(
                    r=4,
                    lora_alpha=8,
                    lora_dropout=0.05,
                    target_modules=LANGUAGE_MODEL_LORA_TARGETS,
                    modules_to_save=[PROJECTOR_MODULE],
                    task_type="CAUSAL_LM",
                ),
            )
            args = TrainingArguments(
                output_dir=str(tmp_path / "ckpt"),
                max_steps=6,
                per_device_train_batch_size=2,
                save_steps=3,
                save_total_limit=1,
                logging_steps=5,
                learning_rate=1e-3,
                report_to="none",
                remove_unused_columns=False,
                disable_tqdm=True,
                seed=0,
            )
            trainer = Trainer(
                model=peft_model,
                args=args,
                train_dataset=rows,  # 8 rows: 4 steps per epoch
                data_collator=notebook_collator(processor, folder),  # encodes, then pads
            )
            train_resumable(trainer)
            assert trainer.state.global_step == 6
            trained.append({n: p.detach().clone() for n, p in peft_model.named_parameters() if p.requires_grad})
        assert trained[0].keys() == trained[1].keys()
        assert all(torch.equal(trained[0][n], trained[1][n]) for n in trained[0])
        assert last_checkpoint(tmp_path / "ckpt").endswith("checkpoint-6")
