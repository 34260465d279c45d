"""What notebook 02's LLMs need besides the lesson: precision, batching, grammars, cache state.

Notebook 02, section 3, builds its distilabel LLMs in a cell (``make_llm``): in mini
distilabel's :class:`~distilabel.models.OpenAILLM` on the course's llama.cpp server (or any
OpenAI-compatible server, ``LLM_BASE_URL``); in full :class:`BatchedTransformersLLM`
(distilabel's :class:`~distilabel.models.TransformersLLM`, batching) on the Colab GPU.

Precision of the full models (:func:`choose_precision`): Qwen2/Qwen2.5 were trained in
bfloat16 and overflow in float16 — their output turns into NaN or ``!!!!`` (public reports:
QwenLM/Qwen3 issues #761, #826 and #868, vllm-project/vllm #14126; the Qwen maintainers
advise bfloat16, or float32 where the GPU has no bfloat16).  So bfloat16 on GPUs that
compute it (compute capability ≥ 8.0: A100, L4, H100), float32 on older ones (T4 = 7.5,
V100 = 7.0) and on the CPU.  float32 doubles the weights (the 3B judge: 3.09 B × 4 B ≈
12.4 GB of a T4's 15 GB), so there fewer rows go through the model at once.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.models import TransformersLLM

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


def ran_from_cache(pipeline: Any) -> bool:
    """Whether the last ``pipeline.run(use_cache=True)`` only read a finished run back from the cache.

    distilabel 1.5.3 returns the cached ``Distiset`` before it sets up the buffer that writes
    new batches, so a pipeline that generated anything has one.  The notebook records a wall
    time only for a run that generated (a cache read is not a measurement).
    """
    cached = getattr(pipeline, "_write_buffer", None) is None
    # distilabel leaves the previous run's buffer on the object: forget it, so that the same
    # cell run again in one kernel (a cache read) is told apart from a run that generated.
    pipeline._write_buffer = None
    return cached
