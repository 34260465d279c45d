"""LLaVA models for notebook 04: the tiny offline one, loading, and image-token checks.

LLaVA = a vision encoder (CLIP) → a projector (2-layer MLP) → a language model.  The
processor replaces each ``<image>`` in the text by as many image tokens as the vision
encoder produces features; the model then swaps those token embeddings for the projected
image features.  If the two numbers disagree (a classic breakage after library upgrades or
a hand-edited processor config) the forward pass fails — or, worse, a training script
truncates and silently misaligns them.  :func:`check_image_tokens` checks it up front.

Mini profile: :func:`tiny_llava_dir` builds (once, cached) a real
``LlavaForConditionalGeneration`` whose language model is SmolLM2-135M-Instruct with its
shipped weights, whose CLIP vision tower is small and random, and whose projector is
random: the projector is what LLaVA's first training stage learns.  It is registered as
``local:tiny-llava-smollm2`` in :data:`utils.core.assets.LOCAL_MODELS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.core.assets import cached_dir, smollm2_hf_dir
from utils.core.errors import CourseError

#: Version tag of the cached tiny model folder: bump it when the build changes.
TINY_LLAVA_TAG = "tiny-llava-smollm2-v2"
IMAGE_TOKEN = "<image>"

#: ChatML (SmolLM2's format) with image items rendered as ``<image>\n``, no default
#: system prompt.  llava-hf checkpoints ship their own template with the same interface.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyVisionSpec:
    """Size of the tiny CLIP vision tower: 64 px images, 2×2 patches of 32 px → 4 image tokens.

    One patch per cell of the synthetic scenes' 2×2 grid, so each image token sees one
    whole shape.  With 16 px patches (16 tokens) training took ~1.5× longer per step
    and had not learned shape, count or position after the few minutes the CPU profile
    can afford (measured, see the notebook's resource card).
    """

    image_size: int = 64
    patch_size: int = 32
    hidden_size: int = 256
    layers: int = 2
    heads: int = 4
    seed: int = 0


class ImageTokenMismatchError(CourseError, ValueError):
    """The processor inserts a different number of image tokens than the model expects."""


# --------------------------------------------------------------------------- building


def build_tiny_llava(out: Path, spec: TinyVisionSpec = TinyVisionSpec()) -> None:
    """Write a tiny LLaVA (model + processor) to ``out``; see the module docstring."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    lm_dir = smollm2_hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    language_model = AutoModelForCausalLM.from_pretrained(lm_dir, dtype=torch.float32)

    vision = CLIPVisionConfig(
        image_size=spec.image_size,
        patch_size=spec.patch_size,
        hidden_size=spec.hidden_size,
        intermediate_size=4 * spec.hidden_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        projection_dim=spec.hidden_size,
    )
    patches = (spec.image_size // spec.patch_size) ** 2
    config = LlavaConfig(
        vision_config=vision,
        text_config=language_model.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=patches,  # "default" strategy drops CLIP's CLS feature
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )
    # A private RNG stream: building the model (only on a cache miss) must not reseed the
    # global generator, or everything drawn afterwards (LoRA's initial weights, dropout)
    # would differ between the first run on a machine and the later ones (issue 14).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlavaForConditionalGeneration(config)
        model.model.language_model.load_state_dict(language_model.model.state_dict())
        model.lm_head.load_state_dict(language_model.lm_head.state_dict())
        model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    model.generation_config = language_model.generation_config

    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS feature
        chat_template=TINY_CHAT_TEMPLATE,
        image_token=IMAGE_TOKEN,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def tiny_llava_dir() -> Path:
    """Folder of the tiny LLaVA (built once in the course cache, a few seconds)."""
    return cached_dir(TINY_LLAVA_TAG, build_tiny_llava)


# --------------------------------------------------------------------------- loading


#: Modules the notebook's ``BitsAndBytesConfig(llm_int8_skip_modules=...)`` must leave in ``dtype``, by their FULL module paths in
#: ``LlavaForConditionalGeneration`` (transformers 5.x nests them under ``model.``; a bare
#: ``"multi_modal_projector"`` is not matched and the projector gets quantized).
#: Setting ``llm_int8_skip_modules`` replaces bitsandbytes' default (``lm_head`` only),
#: so ``lm_head`` is listed again.
#:
#: * the projector is trained in full (``modules_to_save``): an int4 weight cannot
#:   require gradients ("only Tensors of floating point dtype can require gradients");
#: * the vision tower stays in ``dtype`` as in LLaVA-1.5's own QLoRA recipe (its CLIP
#:   encoder is never quantized): 4-bit CLIP features cost answer quality for a saving
#:   of ~0.45 GB (303 M parameters: ~0.61 GB in fp16, ~0.17 GB in NF4).
BNB_SKIP_MODULES: tuple[str, ...] = ("model.multi_modal_projector", "model.vision_tower", "lm_head")


# --------------------------------------------------------------------------- image tokens


@dataclass(frozen=True)
class ImageTokenReport:
    """How many image tokens the model expects per image, and what the processor inserted."""

    expected: int  # features the vision tower + selection strategy produce per image
    per_row: list[int]  # ``<image>`` tokens found in each row of the batch
    image_token: str
    image_token_id: int

    @property
    def ok(self) -> bool:
        return all(n == self.expected for n in self.per_row)


def expected_image_tokens(model_config: Any) -> int:
    """Image features per image of a LLaVA config: patches (+1 CLS with strategy "full")."""
    vision = model_config.vision_config
    patches = (vision.image_size // vision.patch_size) ** 2
    return patches + (1 if model_config.vision_feature_select_strategy == "full" else 0)


def check_image_tokens(
    model_config: Any, processor: Any, input_ids: Any, *, images_per_row: int = 1
) -> ImageTokenReport:
    """Compare the image tokens in ``input_ids`` with what ``model_config`` expects.

    Raises:
        ImageTokenMismatchError: saying which settings of processor and model disagree.
    """
    token_id = int(model_config.image_token_index)
    per_row = [int((row == token_id).sum()) for row in input_ids]
    report = ImageTokenReport(
        expected=expected_image_tokens(model_config),
        per_row=per_row,
        image_token=processor.image_token,
        image_token_id=token_id,
    )
    wanted = report.expected * images_per_row
    wrong = sorted({n for n in per_row if n != wanted})
    if processor.image_token_id != token_id:
        raise ImageTokenMismatchError(
            f"El token de imagen del procesador {processor.image_token!r} tiene el id {processor.image_token_id}, "
            f"pero la configuración del modelo dice image_token_index={token_id}. Carga el procesador y el "
            "modelo del mismo checkpoint."
        )
    if wrong:
        vision = model_config.vision_config
        raise ImageTokenMismatchError(
            f"El procesador insertó {wrong} tokens de imagen por fila y el modelo espera {wanted} "
            f"({vision.image_size} px / parche {vision.patch_size} → {report.expected} vectores, "
            f"estrategia {model_config.vision_feature_select_strategy!r}). Haz que patch_size "
            f"({processor.patch_size}), num_additional_image_tokens ({processor.num_additional_image_tokens}) "
            f"y vision_feature_select_strategy ({processor.vision_feature_select_strategy!r}) del procesador "
            "coincidan con la configuración del modelo, y no recortes las secuencias (max_length) por debajo "
            "de los tokens de imagen."
        )
    return report


# --------------------------------------------------------------------------- exercise

#: (image_size, patch_size, strategy) of real LLaVA-style towers and of the tiny one.
FORMULA_CASES: tuple[tuple[int, int, str], ...] = (
    (64, 32, "default"),  # the course's tiny LLaVA
    (64, 16, "default"),
    (336, 14, "default"),  # llava-1.5 (CLIP ViT-L/14-336)
    (224, 14, "full"),  # CLIP ViT-L/14 keeping the CLS feature
    (384, 16, "full"),
    (32, 32, "full"),
)


def check_image_token_formula(formula: Any) -> bool:
    """Self-check of the exercise: ``formula(image_size, patch_size, strategy) -> int``.

    Compared with the number of features a LLaVA config of that shape produces
    (:func:`expected_image_tokens`, which the unit tests check against the real
    processor and vision tower).
    """
    from types import SimpleNamespace

    from utils.core.exercises import Expectation, attempt, report

    _, stub = attempt(formula, *FORMULA_CASES[0])
    if stub is not None:
        return report("tokens de imagen por imagen", [stub])
    expectations = []
    for size, patch, strategy in FORMULA_CASES:
        config = SimpleNamespace(
            vision_config=SimpleNamespace(image_size=size, patch_size=patch),
            vision_feature_select_strategy=strategy,
        )
        truth = expected_image_tokens(config)
        try:
            got = formula(size, patch, strategy)
        except Exception as exc:  # noqa: BLE001 - the learner's code may raise anything
            got = f"error: {exc!r}"
        expectations.append(
            Expectation(
                ok=got == truth,
                what=f"{size}px, patch {patch}, strategy {strategy!r} → {got}",
                hint="cuenta los parches por lado, elévalo al cuadrado y piensa en el token CLS",
            )
        )
    return report("tokens de imagen por imagen", expectations)


# --------------------------------------------------------------------------- memory estimate

#: Usable memory of a free-Colab T4 (what ``torch.cuda.mem_get_info`` reports): 14.7 GiB.
T4_USABLE_GB = 14.7 * 2**30 / 1e9


@dataclass(frozen=True)
class QloraMemoryEstimate:
    """Peak GPU memory of QLoRA training, estimated by arithmetic (GB = 10⁹ bytes).

    Not a measurement: it counts weights, gradients, optimizer states and the main
    activations, and adds a fixed allowance for the CUDA context and fragmentation.
    """

    quantized_params: int  # NF4 weights: the language model's linear layers
    float_params: int  # kept in float32 by prepare_model_for_kbit_training (embeddings, lm_head, CLIP, projector)
    trainable_params: int  # LoRA + projector: fp32 weight + gradient + two Adam moments
    activations_gb: float
    overhead_gb: float = 1.0

    @property
    def quantized_gb(self) -> float:
        return self.quantized_params * (4 + 0.127) / 8 / 1e9  # NF4 + double-quantized constants

    @property
    def float_gb(self) -> float:
        return self.float_params * 4 / 1e9

    @property
    def trainable_gb(self) -> float:
        return self.trainable_params * (4 + 4 + 8) / 1e9  # fp32 weight, gradient, Adam's two moments

    @property
    def total_gb(self) -> float:
        return self.quantized_gb + self.float_gb + self.trainable_gb + self.activations_gb + self.overhead_gb

    def lines(self) -> list[str]:
        return [
            f"pesos NF4 del modelo de lenguaje: {self.quantized_params / 1e9:.2f} G × 4,13 bits = {self.quantized_gb:.1f} GB",
            f"resto en float32 (embeddings, lm_head, CLIP, proyector): {self.float_params / 1e6:,.0f} M × 4 B = {self.float_gb:.1f} GB",
            f"entrenables (LoRA + proyector): {self.trainable_params / 1e6:,.1f} M × 16 B (peso, gradiente, Adam) = {self.trainable_gb:.2f} GB",
            f"activaciones (gradient checkpointing): {self.activations_gb:.1f} GB; contexto CUDA y fragmentación: {self.overhead_gb:.1f} GB",
            f"total estimado: {self.total_gb:.1f} GB",
        ]


def estimate_qlora_memory(
    peft_model: Any, *, batch_size: int, seq_len: int, checkpointing: bool = True
) -> QloraMemoryEstimate:
    """Estimate QLoRA training memory of a (meta-device) ``PeftModel`` of a LLaVA.

    Quantized: the weights of the ``nn.Linear`` layers of the language model (not the
    LoRA matrices, ``lm_head``, CLIP or the projector: see :data:`BNB_SKIP_MODULES`).
    Activations with gradient checkpointing: each decoder layer's fp16 input is kept
    (layers × batch × seq × hidden × 2 B), plus one layer recomputed (~8 such tensors and
    the MLP's intermediate ones) and the fp32 logits about three times over in the loss.
    """
    import torch

    quantized = 0
    for name, module in peft_model.named_modules():
        if (
            type(module) is torch.nn.Linear
            and ".language_model." in f".{name}."
            and not any(part in name for part in ("lora_", "modules_to_save"))
        ):
            quantized += module.weight.numel()
    total = sum(p.numel() for p in peft_model.parameters())
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    text = peft_model.config.text_config if hasattr(peft_model.config, "text_config") else peft_model.config
    hidden, layers, vocab = text.hidden_size, text.num_hidden_layers, text.vocab_size
    tokens = batch_size * seq_len
    kept = (layers if checkpointing else layers * 8) * tokens * hidden * 2
    one_layer = tokens * (8 * hidden + 3 * text.intermediate_size) * 2
    logits = 3 * tokens * vocab * 4
    return QloraMemoryEstimate(
        quantized_params=quantized,
        float_params=total - quantized - trainable,
        trainable_params=trainable,
        activations_gb=(kept + one_layer + logits) / 1e9,
    )
