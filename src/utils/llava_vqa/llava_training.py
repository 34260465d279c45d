"""Training, inference and memory helpers for notebook 04 (LLaVA + LoRA on VQA).

The notebook writes the lesson itself (the ``encode``/``collate`` pair that masks everything
but the answer with -100, ``from_pretrained`` with its ``quantization_config``,
``merge_and_unload``); this module keeps what is not the lesson:

* :func:`prompt_text`, :func:`answer_suffix`, :func:`check_prompt_prefix` — chat-template
  details the notebook's ``encode`` relies on.
* :func:`two_rate_optimizer` — AdamW with separate learning rates for LoRA and the projector.
* :func:`train_resumable` — ``Trainer.train`` that picks up the last checkpoint.
* :func:`generate_answers` — greedy, batched answers for a list of rows.
* :func:`release` / :func:`free_memory` — free models and prove, with weak references,
  that they are gone.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utils.core.errors import CourseError
from utils.core.finetune import greedy_new_text
from utils.llava_vqa.vqa_data import llava_row_to_messages

#: LoRA goes on every linear layer of the language model — and only there: the CLIP
#: vision tower has layers with the same names (q_proj, k_proj…), hence the regex.
LANGUAGE_MODEL_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
#: Trained in full and saved with the adapter (the projector starts random in mini).
PROJECTOR_MODULE = "multi_modal_projector"


class PromptPrefixError(CourseError, ValueError):
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
            f"Fila {row.get('id')!r}: la plantilla de chat escribe el prompt de forma distinta con y sin la "
            "respuesta, así que no se sabe dónde empieza la respuesta. Revisa la plantilla de chat."
        )
    tail = full[len(prompt) :]
    if eos and eos in tail:
        return tail[: tail.index(eos) + len(eos)]
    return tail.rstrip() + (eos or "")


def check_prompt_prefix(row: dict[str, Any], prompt_ids: Sequence[int], input_ids: Sequence[int]) -> None:
    """Check that the tokenized prompt is a prefix of the tokenized prompt + answer.

    Labels are masked up to ``len(prompt_ids)``; if the tokenizer merged the last prompt
    token with the answer, the loss would be computed in the wrong place.

    Raises:
        PromptPrefixError: naming the row.
    """
    if list(map(int, input_ids[: len(prompt_ids)])) != list(map(int, prompt_ids)):
        raise PromptPrefixError(
            f"Fila {row.get('id')!r}: los tokens del prompt no son un prefijo de los de "
            "prompt + respuesta; la pérdida se calcularía en el sitio equivocado. Revisa la plantilla de chat."
        )


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
            f"Se esperaban pesos entrenables en {PROJECTOR_MODULE!r} y fuera de él (LoRA); hay "
            f"{len(projector)} y {len(rest)}: aplica antes get_peft_model con modules_to_save=[{PROJECTOR_MODULE!r}]."
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
    """``trainer.train()``, resuming from the last checkpoint in its output_dir if any.

    A run that already reached ``max_steps`` saved its last checkpoint: running the cell
    again loads those weights and that state instead of training, so the model is the
    first run's, never a model trained twice.  (``Trainer.train(resume_from_checkpoint=…)``
    is not enough: resuming at ``max_steps`` in the middle of an epoch runs one more step.)
    """
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import TrainOutput

    checkpoint = last_checkpoint(Path(trainer.args.output_dir))
    if checkpoint and int(checkpoint.rsplit("-", 1)[-1]) >= trainer.args.max_steps:
        print(
            f"Esta configuración ya se entrenó ({checkpoint}): se cargan sus pesos en lugar de "
            f"entrenar otra vez. Para repetir el entrenamiento, borra {trainer.args.output_dir}."
        )
        trainer._load_from_checkpoint(checkpoint)  # the same loader train() uses (PEFT adapters included)
        trainer.state = TrainerState.load_from_json(str(Path(checkpoint) / "trainer_state.json"))
        losses = [e["train_loss"] for e in trainer.state.log_history if "train_loss" in e]
        return TrainOutput(trainer.state.global_step, losses[-1] if losses else float("nan"), {})
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


# --------------------------------------------------------------------------- memory


class MemoryNotFreedError(CourseError, RuntimeError):
    """Something still holds a model that should have been freed."""


def free_memory(**gone: weakref.ref) -> None:
    """Collect garbage, empty the CUDA cache and check that each ``gone`` object is freed.

    ``del name`` only removes one name; the object lives on while anything else refers
    to it (another variable, the optimizer, the Trainer, IPython's ``Out`` history).  Pass
    weak references to what must be gone (``free_memory(modelo=weakref.ref(model))``):

    Raises:
        MemoryNotFreedError: naming what is still alive and what refers to it.
    """
    import sys

    # A failed cell's traceback keeps its frames (and the models in them) alive.
    for name in ("last_traceback", "last_value", "last_type", "last_exc"):
        if getattr(sys, name, None) is not None:
            setattr(sys, name, None)
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency of the notebook
        pass
    alive = [name for name, ref in gone.items() if ref() is not None]
    if alive:
        holders = []
        for name in alive:
            kinds = sorted({type(r).__name__ for r in gc.get_referrers(gone[name]())} - {"frame"})
            holders.append(f"{name} ({type(gone[name]()).__name__}, referido por: {', '.join(kinds) or '?'})")
        raise MemoryNotFreedError(
            "Sigue en memoria lo que debía liberarse: " + "; ".join(holders) + ". Borra (del) o pon a "
            "None todas las variables que apuntan a ese modelo (también optimizer y trainer) y vuelve "
            "a ejecutar la celda; si no, reinicia el entorno y ejecuta el cuaderno desde el principio."
        )


def release(namespace: dict[str, Any], *names: str) -> None:
    """Set each of ``names`` in ``namespace`` (a notebook's ``globals()``) to None and check
    with :func:`free_memory` that what they held is really freed.

    Names that do not exist yet, or are None, are skipped, so a cell that calls it can be
    run again.
    """
    gone = {}
    for name in names:
        if namespace.get(name) is not None:
            gone[name] = weakref.ref(namespace[name])
            namespace[name] = None
    free_memory(**gone)
