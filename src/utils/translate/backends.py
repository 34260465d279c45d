"""Translation backends behind one small interface.

A backend turns a list of English sentences into a list of Spanish ones, in order::

    backend.translate(["What color is the bus?", "The bus is red."])

* :class:`Seq2SeqBackend` — a transformers encoder-decoder MT model
  (``Helsinki-NLP/opus-mt-en-es`` by default, NLLB as an option), batched, on the GPU when
  there is one.
* :class:`~utils.translate.ct2_backend.CTranslate2Backend` — the same MT model converted
  to CTranslate2 (int8 on CPU), for bulk jobs.
* :class:`ChatBackend` — any OpenAI-compatible chat endpoint (the course's llama.cpp
  server, vLLM, LM Studio, Ollama, OpenAI) with a translation prompt.

The engine does the rest (cache, batching by length, retries, quarantine), so a new
backend only needs ``name``, ``batch_size`` and ``translate``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from utils.core.retry import RetryPolicy, retry_call
from utils.core.settings import CourseSettings, TranslateSettings, get_settings
from utils.translate.greedy import fast_greedy_supported, greedy_generate

log = logging.getLogger("utils.translate")


@runtime_checkable
class Backend(Protocol):
    """What the engine needs from a translator."""

    #: Identifies the model and every setting that changes its outputs; stored in the
    #: manifest (a resume must use the same backend) and used as the cache key.
    name: str
    #: How many segments the engine sends per call.
    batch_size: int

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Translate ``texts`` (English sentences) into Spanish, one output per input."""
        ...


# --------------------------------------------------------------------------- seq2seq


#: NLLB-style models need language codes; Marian (opus-mt) models do not.
NLLB_LANGS = ("eng_Latn", "spa_Latn")


def idle_cpu_threads() -> int:
    """CPU cores not busy with other programs right now (at least 1).

    Cores available to this process minus the 1-minute load average, rounded.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:  # not available on this platform
        busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


#: Precisions :class:`Seq2SeqBackend` accepts besides ``"auto"``.
DTYPES = ("float32", "bfloat16", "float16")


def auto_dtype(device: str) -> str:
    """The fastest precision ``device`` computes natively.

    float16 on CUDA; bfloat16 on a CPU with bfloat16 instructions (AVX512-BF16 or AMX),
    where oneDNN's matrix products are much faster than float32 (on the course machine a
    batch of 64 opus-mt sentences takes half the time); float32 on other CPUs, where
    bfloat16 would be emulated.
    """
    import torch

    if device.startswith("cuda"):
        return "float16"
    if device == "cpu" and torch.backends.mkldnn.is_available():
        capabilities = torch.cpu.get_capabilities()
        if capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"):
            return "bfloat16"
    return "float32"


class Seq2SeqBackend:
    """A transformers sequence-to-sequence MT model (MarianMT, NLLB, M2M100...).

    Args:
        model: a Hub id or a local folder (see :func:`utils.core.assets.resolve_model`).
        batch_size: segments per ``generate`` call.
        max_new_tokens: generation cap per segment.
        num_beams: 1 = greedy (fast); opus-mt's own default is 4 (better, slower).
        min_new_tokens: force at least this many tokens (benchmarks use it to fix the
            amount of work per segment); ``None`` in real use.
        device: ``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda"``.
        src_lang / tgt_lang: language codes for NLLB-style models (ignored by Marian).
        threads: CPU threads for PyTorch: a number, ``None`` (PyTorch's default: one per
            core) or ``"auto"`` (:func:`idle_cpu_threads`, the cores other programs leave
            free).  PyTorch's threads wait for each other actively, so on a busy machine one
            thread can be several times faster than two.
        dtype: precision of the weights and the arithmetic: ``"auto"`` (:func:`auto_dtype`:
            float16 on a GPU, bfloat16 on a CPU whose instructions compute it natively,
            float32 otherwise), or ``"float32"``, ``"bfloat16"``, ``"float16"``.  It is part
            of :attr:`name`: another precision gives (slightly) different outputs.
        fast_greedy: decode greedy batches with :func:`utils.translate.greedy.greedy_generate`
            (the same token ids as ``generate``, without its per-step copies of the
            batch x vocabulary scores); it falls back to ``generate`` by itself for beam
            search or settings it does not handle (see ``fast_greedy_off``).
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        min_new_tokens: int | None = None,
        device: str = "auto",
        src_lang: str = NLLB_LANGS[0],
        tgt_lang: str = NLLB_LANGS[1],
        threads: int | Literal["auto"] | None = "auto",
        dtype: str = "auto",
        fast_greedy: bool = True,
    ) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if dtype != "auto" and dtype not in DTYPES:  # before anything is loaded
            raise ValueError(f"La precisión {dtype!r} no existe: usa 'auto' o una de estas: {', '.join(DTYPES)}.")
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if self.device == "cpu" and threads:
            torch.set_num_threads(idle_cpu_threads() if threads == "auto" else int(threads))
        self.threads = torch.get_num_threads()
        with warnings.catch_warnings():  # MarianTokenizer recommends sacremoses; not needed here
            warnings.filterwarnings("ignore", message=".*sacremoses.*")
            self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.dtype = auto_dtype(self.device) if dtype == "auto" else dtype
        self.model = (
            AutoModelForSeq2SeqLM.from_pretrained(model, dtype=getattr(torch, self.dtype)).to(self.device).eval()
        )
        self.model.generation_config.max_length = None  # max_new_tokens decides (and no warning)
        self.batch_size = batch_size
        self.generate_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "num_beams": num_beams,
            "do_sample": False,
        }
        if min_new_tokens:
            self.generate_kwargs["min_new_tokens"] = min_new_tokens
        if hasattr(self.tokenizer, "src_lang") and tgt_lang in self.tokenizer.get_vocab():
            self.tokenizer.src_lang = src_lang  # NLLB/M2M: source code prefix + forced target
            self.generate_kwargs["forced_bos_token_id"] = self.tokenizer.convert_tokens_to_ids(tgt_lang)
        self.max_input_tokens = min(int(getattr(self.tokenizer, "model_max_length", 512) or 512), 1024)
        settings = ",".join(f"{k}={v}" for k, v in sorted(self.generate_kwargs.items()))
        # The decoding loop is not in the name: it gives the same outputs as generate.
        self.name = f"seq2seq:{model}:{settings},dtype={self.dtype}"
        #: Why ``generate`` is used instead of the fast greedy loop (``None``: it is not).
        self.fast_greedy_off: str | None = (
            fast_greedy_supported(self.model, self.generate_kwargs) if fast_greedy else "fast_greedy=False"
        )

    def translate(self, texts: Sequence[str]) -> list[str]:
        """One padded batch through the model; returns the decoded outputs."""
        import torch

        if not texts:
            return []
        inputs = self.tokenizer(
            list(texts), return_tensors="pt", padding=True, truncation=True, max_length=self.max_input_tokens
        ).to(self.device)
        if self.fast_greedy_off is None:
            output_ids = greedy_generate(
                self.model, inputs["input_ids"], inputs["attention_mask"], self.generate_kwargs
            )
        else:
            with torch.inference_mode():
                output_ids = self.model.generate(**inputs, **self.generate_kwargs)
        return self.tokenizer.batch_decode(output_ids, skip_special_tokens=True)


# --------------------------------------------------------------------------- chat


SYSTEM_PROMPT = (
    "You are a professional English-to-Spanish translator. Translate the user's text into "
    "natural Spanish. Keep numbers, code, URLs and punctuation marks exactly as they are. "
    "Reply with the Spanish translation only: no explanations, no quotes, no notes."
)
#: Example pairs shown to the model before each request (few-shot prompting).
FEW_SHOT: tuple[tuple[str, str], ...] = (
    ("What color is the bus in the image?", "¿De qué color es el autobús de la imagen?"),
    ("There are 3 people standing next to the red car.", "Hay 3 personas de pie junto al coche rojo."),
)


@dataclass(frozen=True)
class ChatPrompt:
    """The translation prompt: a system message plus example pairs."""

    system: str = SYSTEM_PROMPT
    examples: tuple[tuple[str, str], ...] = FEW_SHOT

    def messages(self, text: str) -> list[dict[str, str]]:
        """The chat messages that ask for the translation of ``text``."""
        messages = [{"role": "system", "content": self.system}]
        for source, target in self.examples:
            messages += [{"role": "user", "content": source}, {"role": "assistant", "content": target}]
        messages.append({"role": "user", "content": text})
        return messages


class ChatBackend:
    """Translation through an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Each segment is one request (temperature 0); ``concurrency`` requests run in
    parallel threads, which is what servers such as vLLM need to batch on the GPU.  Each
    request is retried on its own with :func:`utils.core.retry.retry_call` (timeouts, 429,
    5xx), so one failure does not cost the whole batch.

    Args:
        client: an ``openai.OpenAI`` client (see :func:`utils.services.llm_client.make_client`).
        model: the model name the server expects.
        concurrency: parallel requests (also the engine's batch size).
        max_tokens: generation cap per segment.
        prompt: the system prompt and examples.
        retry: per-request retry policy.
    """

    def __init__(
        self,
        client: Any,
        model: str,
        *,
        concurrency: int = 4,
        max_tokens: int = 256,
        prompt: ChatPrompt = ChatPrompt(),
        retry: RetryPolicy = RetryPolicy(attempts=4, base_delay=1.0),
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency} no es válido: hace falta al menos 1 petición a la vez.")
        self.client = client
        self.model = model
        self.batch_size = concurrency
        self.max_tokens = max_tokens
        self.prompt = prompt
        self.retry = retry
        base = str(getattr(client, "base_url", "")).rstrip("/")
        digest = hashlib.sha256(repr(prompt).encode("utf-8")).hexdigest()[:10]
        self.name = f"chat:{base}:{model}:max_tokens={max_tokens}:prompt={digest}"

    def _one(self, text: str) -> str:
        def call() -> str:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=self.prompt.messages(text),
                temperature=0.0,
                max_tokens=self.max_tokens,
            )
            return response.choices[0].message.content or ""

        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            log.warning(
                "la petición falló (%s); reintento %d dentro de %.1f s", type(exc).__name__, attempt + 1, delay
            )

        return retry_call(call, self.retry, on_retry=on_retry)

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Translate ``texts`` with up to ``concurrency`` requests in flight."""
        if len(texts) <= 1 or self.batch_size == 1:
            return [self._one(t) for t in texts]
        with ThreadPoolExecutor(max_workers=min(self.batch_size, len(texts))) as pool:
            return list(pool.map(self._one, texts))


# --------------------------------------------------------------------------- factory

BACKENDS = ("seq2seq", "openai", "ctranslate2")


def make_backend(
    kind: str | None = None,
    *,
    settings: CourseSettings | None = None,
    model: str | None = None,
    batch_size: int | None = None,
    max_new_tokens: int | None = None,
    num_beams: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    threads: int | Literal["auto"] | None = "auto",
    start_server: bool = True,
    quantization: str = "auto",
) -> Backend:
    """Build the backend the profile's settings describe, with optional overrides.

    ``"seq2seq"`` loads ``settings.translate.mt_model_id`` (``local:`` ids are built
    offline); ``"ctranslate2"`` runs the same model converted to CTranslate2
    (``quantization``: int8 on CPU, int8_float16 on GPU, see
    :mod:`utils.translate.ct2_backend`); ``"openai"`` talks to :func:`utils.services.llm_client.resolve_endpoint` — the
    course's llama.cpp server (started if needed) unless ``LLM_BASE_URL`` is set.

    Raises:
        ValueError: for an unknown ``kind``.
    """
    settings = settings or get_settings()
    cfg: TranslateSettings = settings.translate
    kind = kind or cfg.backend
    if kind in ("seq2seq", "ctranslate2"):
        from utils.core.assets import resolve_model

        common: dict[str, Any] = {
            "batch_size": batch_size or cfg.batch_size,
            "max_new_tokens": max_new_tokens or cfg.max_new_tokens,
            "num_beams": num_beams or cfg.num_beams,
            "device": device,
            "threads": threads,
        }
        if kind == "ctranslate2":
            from utils.translate.ct2_backend import CTranslate2Backend, check_quantization, resolve_device

            if quantization != "auto":  # a typo fails before the model id is resolved or built
                check_quantization(quantization, resolve_device(device))
            return CTranslate2Backend(resolve_model(model or cfg.mt_model_id), quantization=quantization, **common)
        return Seq2SeqBackend(resolve_model(model or cfg.mt_model_id), dtype=dtype, **common)
    if kind == "openai":
        from utils.services.llm_client import make_client, resolve_endpoint

        endpoint = resolve_endpoint(settings)
        if endpoint.is_course_server and start_server:
            from utils.services.llm_server import ensure_running

            ensure_running(settings)
        return ChatBackend(
            make_client(endpoint, max_retries=0),
            model or endpoint.model,
            concurrency=batch_size or cfg.chat_concurrency,
            max_tokens=max_new_tokens or cfg.chat_max_tokens,
        )
    raise ValueError(f"El motor de traducción {kind!r} no existe; elige uno de estos: {', '.join(BACKENDS)}.")
