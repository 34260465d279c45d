"""Training, inference and merging for notebook 04 (LLaVA + LoRA on VQA).

* :class:`VqaCollator` — LLaVA conversation rows → processor inputs with labels that
  only cover the answer (the prompt and the image tokens are masked with -100).
* :func:`two_rate_optimizer` — AdamW with separate learning rates for LoRA and the projector.
* :func:`train_resumable` — ``Trainer.train`` that picks up the last checkpoint.
* :func:`generate_answers` — greedy, batched answers for a list of rows.
* :func:`merge_and_verify` — ``merge_and_unload``, save, reload, and compare the merged
  model's greedy output with the adapter model's on fixed inputs.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.finetune import greedy_new_text
from utils.vqa_data import answer_of, llava_row_to_messages

#: LoRA goes on every linear layer of the language model — and only there: the CLIP
#: vision tower has layers with the same names (q_proj, k_proj…), hence the regex.
LANGUAGE_MODEL_LORA_TARGETS = (
    r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
)
#: Trained in full and saved with the adapter (the projector starts random in mini).
PROJECTOR_MODULE = "multi_modal_projector"
IGNORE_INDEX = -100


class PromptPrefixError(ValueError):
    """The tokenized prompt is not a prefix of the tokenized prompt + answer."""


def load_image(path: Path):
    """Open an image file as RGB (the processor's expected mode)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


def prompt_text(processor: Any, row: dict[str, Any]) -> str:
    """The chat-template prompt of a LLaVA row, ending where the answer starts."""
    return processor.apply_chat_template(
        llava_row_to_messages(row, with_answer=False), add_generation_prompt=True, tokenize=False
    )


def answer_suffix(processor: Any, row: dict[str, Any], prompt: str) -> str:
    """What the chat template writes after ``prompt`` for the row's answer, ending in eos.

    Each template has its own spacing (ChatML: ``rojo<|im_end|>``; llava-1.5:
    `` yes </s>``), so the answer text is cut from the rendered conversation rather than
    glued on by hand; the eos token is added if the template does not write one, so the
    model learns to stop.

    Raises:
        PromptPrefixError: when the rendered conversation does not start with ``prompt``.
    """
    eos = processor.tokenizer.eos_token
    full = processor.apply_chat_template(llava_row_to_messages(row), tokenize=False)
    if not full.startswith(prompt):
        raise PromptPrefixError(
            f"Row {row.get('id')!r}: the chat template renders the prompt differently with and "
            "without the answer, so the answer's position is unknown. Check the chat template."
        )
    tail = full[len(prompt) :]
    if eos and eos in tail:
        return tail[: tail.index(eos) + len(eos)]
    return tail.rstrip() + (eos or "")


@dataclass
class VqaCollator:
    """Turn a list of LLaVA rows into one training batch.

    ``prompt + answer + eos`` is tokenized with the image; the labels copy the input ids
    on the answer and the eos token and are -100 elsewhere, so the loss only teaches the
    answer.  Padding goes on the right for training.
    """

    processor: Any
    image_root: Path

    def __call__(self, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
        images = [load_image(Path(self.image_root) / row["image"]) for row in rows]
        prompts = [prompt_text(self.processor, row) for row in rows]
        texts = [p + answer_suffix(self.processor, row, p) for p, row in zip(prompts, rows)]
        self.processor.tokenizer.padding_side = "right"
        batch = self.processor(text=texts, images=images, return_tensors="pt", padding=True)
        prompt_ids = self.processor(text=prompts, images=images)["input_ids"]
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = IGNORE_INDEX
        for i, ids in enumerate(prompt_ids):
            n = len(ids)
            if batch["input_ids"][i, :n].tolist() != list(ids):
                raise PromptPrefixError(
                    f"Row {rows[i].get('id')!r}: the prompt's tokens are not a prefix of prompt+answer; "
                    "the answer would be scored from the wrong position. Check the chat template."
                )
            labels[i, :n] = IGNORE_INDEX
        batch["labels"] = labels
        return dict(batch)


def two_rate_optimizer(model: Any, *, lr: float, projector_lr: float, weight_decay: float = 0.0) -> Any:
    """AdamW with one learning rate for the LoRA weights and another for the projector.

    The original LLaVA-1.5 LoRA recipe does the same (``--learning_rate 2e-4
    --mm_projector_lr 2e-5``).  In mini the projector starts random, so it gets the
    higher rate, as in LLaVA's first stage (projector alone, 1e-3).  Pass the result to
    ``Trainer(optimizers=(optimizer, None))``; the Trainer still builds the scheduler.

    Raises:
        ValueError: if nothing is trainable, or no trainable weight is in the projector.
    """
    import torch

    projector, rest = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (projector if PROJECTOR_MODULE in name else rest).append(param)
    if not projector or not rest:
        raise ValueError(
            f"Expected trainable weights both in {PROJECTOR_MODULE!r} and elsewhere (LoRA), got "
            f"{len(projector)} and {len(rest)}: apply get_peft_model with modules_to_save=[{PROJECTOR_MODULE!r}] first."
        )
    return torch.optim.AdamW(
        [{"params": rest, "lr": lr}, {"params": projector, "lr": projector_lr}], lr=lr, weight_decay=weight_decay
    )


def settings_fingerprint(section: Any, length: int = 8) -> str:
    """Short stable hash of a settings dataclass: a run folder per configuration, so a
    resumed run never picks up checkpoints trained with other settings."""
    import dataclasses
    import hashlib
    import json

    payload = json.dumps(dataclasses.asdict(section), sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def last_checkpoint(output_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` folder in ``output_dir``, or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    steps = [(int(p.name.split("-")[-1]), p) for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    return str(max(steps)[1]) if steps else None


def train_resumable(trainer: Any) -> Any:
    """``trainer.train()``, resuming from the last checkpoint in its output_dir if any."""
    checkpoint = last_checkpoint(Path(trainer.args.output_dir))
    if checkpoint:
        print(f"Reanudando desde {checkpoint}")
    return trainer.train(resume_from_checkpoint=checkpoint)


# --------------------------------------------------------------------------- inference


def generate_answers(
    model: Any,
    processor: Any,
    rows: Sequence[dict[str, Any]],
    image_root: Path,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 8,
    progress: bool = True,
    desc: str = "generando",
) -> list[str]:
    """Greedy answers of ``model`` to each LLaVA row (left padding, batched)."""
    import torch
    from tqdm.auto import tqdm

    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    answers: list[str] = []
    was_training = model.training
    model.eval()
    starts = range(0, len(rows), batch_size)
    for start in tqdm(starts, desc=desc, disable=not progress, total=len(starts)):
        chunk = rows[start : start + batch_size]
        images = [load_image(Path(image_root) / row["image"]) for row in chunk]
        prompts = [prompt_text(processor, row) for row in chunk]
        inputs = processor(text=prompts, images=images, return_tensors="pt", padding=True).to(device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        answers += greedy_new_text(model, tokenizer, inputs, max_new_tokens=max_new_tokens)
    model.train(was_training)
    return answers


# --------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class MergeCheck:
    """Greedy outputs of the adapter model and of the reloaded merged model."""

    merged_dir: Path
    adapter_outputs: list[str]
    merged_outputs: list[str]

    @property
    def identical(self) -> int:
        return sum(a == b for a, b in zip(self.adapter_outputs, self.merged_outputs))

    @property
    def all_equal(self) -> bool:
        return self.adapter_outputs == self.merged_outputs


def merge_and_verify(
    peft_model: Any,
    processor: Any,
    merged_dir: Path,
    *,
    answer: Callable[[Any], list[str]],
    load_merged: Callable[[Path], Any],
) -> tuple[Any, MergeCheck]:
    """Fold the LoRA weights into the base model, save it, reload it, compare outputs.

    Args:
        peft_model: the trained ``PeftModel`` (on a full-precision base: merging into a
            4-bit base would round the merged weights).
        processor: saved next to the merged weights, so the folder is self-contained.
        merged_dir: where to save.
        answer: ``model → list of answers`` on fixed inputs (e.g. :func:`generate_answers`
            on a few test rows); called on the adapter model and on the reloaded model.
        load_merged: ``folder → model`` (e.g. ``LlavaForConditionalGeneration.from_pretrained``).

    Returns:
        The reloaded merged model and the comparison.
    """
    adapter_outputs = answer(peft_model)
    merged = peft_model.merge_and_unload()
    merged_dir = Path(merged_dir)
    merged.save_pretrained(merged_dir)
    processor.save_pretrained(merged_dir)
    del merged
    gc.collect()
    reloaded = load_merged(merged_dir)
    merged_outputs = answer(reloaded)
    return reloaded, MergeCheck(merged_dir, adapter_outputs, merged_outputs)
