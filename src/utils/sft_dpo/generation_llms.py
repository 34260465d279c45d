"""The distilabel LLMs of notebook 02, for both profiles, from one call.

* mini — ``local:`` model ids: the course's llama.cpp server (SmolLM2-135M-Instruct)
  through distilabel's OpenAI-compatible class :class:`~distilabel.models.OpenAILLM`.
  ``LLM_BASE_URL`` points it at any other OpenAI-compatible server instead (LM Studio,
  Ollama, vLLM…), see :mod:`utils.services.llm_client`.
* full — Hub model ids: :class:`BatchedTransformersLLM` (distilabel's
  :class:`~distilabel.models.TransformersLLM`, batching) on the Colab GPU.

Precision of the full models (:func:`choose_precision`): Qwen2/Qwen2.5 were trained in
bfloat16 and overflow in float16 — their output turns into NaN or ``!!!!`` (public reports:
QwenLM/Qwen3 issues #761, #826 and #868, vllm-project/vllm #14126; the Qwen maintainers
advise bfloat16, or float32 where the GPU has no bfloat16).  So bfloat16 on GPUs that
compute it (compute capability ≥ 8.0: A100, L4, H100), float32 on older ones (T4 = 7.5,
V100 = 7.0) and on the CPU.  float32 doubles the weights (the 3B judge: 3.09 B × 4 B ≈
12.4 GB of a T4's 15 GB), so there fewer rows go through the model at once.

Only the course's own llama.cpp server gets a GBNF grammar (``extra_body={"grammar": …}``)
that forces the output format; other servers and models get the same prompt without it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from utils.core.assets import is_local
from utils.core.settings import CourseSettings
from utils.services.llm_client import resolve_endpoint

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.models import OpenAILLM, TransformersLLM
    from distilabel.models.llms.base import LLM

#: Rows per forward pass in float32 on a GPU without bfloat16 (T4).  The 3B judge in fp32
#: takes ~11.5 GiB of the T4's 14.7 GiB; each row of its ~1,600-token prompt+answer holds
#: ~0.11 GiB of fp32 KV cache (36 layers × 2 KV heads × 128 dims × 2 × 4 B per token) and
#: the prefill's MLP activations (11,008 × ~1,100 tokens × 4 B × ~3) ~0.14 GiB more:
#: 4 rows ≈ 1 GiB fit, 16 rows (~4 GiB) do not.  An estimate, not a GPU measurement.
FP32_GPU_MAX_BATCH = 4


@dataclass(frozen=True)
class Precision:
    """How the full profile's models are loaded on this machine."""

    dtype: str  # torch dtype name passed to transformers
    max_batch: int | None  # cap on rows per forward pass (None: the settings' batch_size)
    reason: str  # Spanish, shown to the learner

    def batch(self, batch_size: int) -> int:
        """Rows per forward pass for a stage that asks for ``batch_size``."""
        return max(1, min(batch_size, self.max_batch or batch_size))


def cuda_capability() -> tuple[int, int] | None:
    """Compute capability of the first CUDA GPU, or ``None`` without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    return tuple(torch.cuda.get_device_capability(0))  # type: ignore[return-value]


def choose_precision(capability: tuple[int, int] | None) -> Precision:
    """bfloat16 where the GPU computes it, float32 elsewhere (never float16: Qwen2.5 overflows).

    ``torch.cuda.is_bf16_supported()`` is not the test: it is also true on a T4, where
    bfloat16 is only emulated (slowly); compute capability 8.0 (Ampere) is where it is native.
    """
    if capability is None:
        return Precision("float32", None, "sin GPU: float32")
    name = f"capacidad de cómputo {capability[0]}.{capability[1]}"
    if tuple(capability) >= (8, 0):
        return Precision("bfloat16", None, f"GPU con bfloat16 ({name}): bfloat16")
    return Precision(
        "float32",
        FP32_GPU_MAX_BATCH,
        f"GPU sin bfloat16 ({name}, p. ej. una T4): float32, porque Qwen2.5 en float16 da NaN o «!!!!»; "
        f"como ocupa el doble, pasan como mucho {FP32_GPU_MAX_BATCH} filas a la vez por el modelo",
    )


class BatchedTransformersLLM(TransformersLLM):
    """distilabel's ``TransformersLLM`` that runs ``pipeline_batch_size`` prompts per forward pass.

    distilabel 1.5.3 hands all the rows of a step batch to ``generate`` in one call, but
    builds the ``transformers`` text-generation pipeline without ``batch_size``, and a
    pipeline without one runs a list of prompts one at a time (``batch_size=1``).  The
    step's ``input_batch_size`` only decides how many rows reach ``generate``; this decides
    how many of them the model sees at once (left-padded: the pipeline pads decoder-only
    models on the left).
    """

    pipeline_batch_size: int = 1

    def load(self) -> None:
        super().load()
        if not hasattr(self._pipeline, "_batch_size"):  # what transformers' pipeline(batch_size=…) sets
            raise RuntimeError("transformers' Pipeline no longer has _batch_size: update BatchedTransformersLLM")
        self._pipeline._batch_size = self.pipeline_batch_size


def make_llm(
    model_id: str,
    *,
    max_new_tokens: int,
    temperature: float,
    grammar: str | None = None,
    seed: int | None = None,
    settings: CourseSettings | None = None,
    batch_size: int = 1,
    precision: Precision | None = None,
) -> LLM:
    """A distilabel LLM for ``model_id`` (not loaded yet: ``task.load()`` does that).

    Args:
        model_id: ``local:…`` (mini: the local OpenAI-compatible server) or a Hub id (full).
        max_new_tokens / temperature: generation budget and randomness.
        grammar: GBNF grammar; only sent to the course's llama.cpp server.
        seed: sampling seed (llama.cpp server), so reruns give the same text.
        batch_size: rows the stage hands over at once; a Hub model runs them in one forward
            pass (capped by ``precision``).  The llama.cpp server batches on its own.
        precision: dtype and batch cap of a Hub model; by default chosen for this machine's
            GPU (:func:`choose_precision`).
    """
    if is_local(model_id):
        endpoint = resolve_endpoint(settings)
        extra: dict[str, Any] = {}
        if endpoint.is_course_server:
            extra = {k: v for k, v in (("grammar", grammar), ("seed", seed)) if v is not None}
        generation: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature}
        if extra:
            generation["extra_body"] = extra
        return OpenAILLM(
            model=endpoint.model,
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=300,
            max_retries=2,
            generation_kwargs=generation,
        )
    precision = precision or choose_precision(cuda_capability())
    return BatchedTransformersLLM(
        model=model_id,
        device_map="auto",
        torch_dtype=precision.dtype,
        pipeline_batch_size=precision.batch(batch_size),
        generation_kwargs={
            "max_new_tokens": max_new_tokens,
            "temperature": max(temperature, 0.01),
            "do_sample": temperature > 0,
        },
    )


def ultrafeedback_grammar(n_texts: int) -> str:
    """GBNF grammar for UltraFeedback's text format, with exactly ``n_texts`` sections.

    Each section is ``#### Output for Text i`` / ``Rating: 1-5`` / ``Rationale: …`` and
    sections are separated by a blank line: what ``UltraFeedback.format_output`` parses.
    """
    if n_texts < 1:
        raise ValueError("n_texts must be at least 1")
    sections = ' "\\n\\n" '.join(f"s{i}" for i in range(1, n_texts + 1))
    rules = [f"root ::= {sections}"]
    rules += [
        f's{i} ::= "#### Output for Text {i}\\nRating: " [1-5] "\\nRationale: " rationale'
        for i in range(1, n_texts + 1)
    ]
    rules.append(r"rationale ::= [^\n\[\]]{10,120}")
    return "\n".join(rules) + "\n"
