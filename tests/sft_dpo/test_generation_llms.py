"""The full profile's LLMs of notebook 02: precision by GPU, and real batching.

The GPU cases are decided from the compute capability alone, so they run on CPU; the
batching test runs the notebook's own task and ``make_llm`` (its cells, via
:func:`nb02_fixtures.notebook_cells`) through the full profile's class on a tiny random
Qwen2 model (the architecture of Qwen2.5) and watches what reaches ``generate``.
"""

from __future__ import annotations

import dataclasses
import warnings

import pytest
from nb02_fixtures import notebook_cells

from utils.core.settings import get_settings
from utils.sft_dpo import generation_llms
from utils.sft_dpo.generation_llms import FP32_GPU_MAX_BATCH, BatchedTransformersLLM, choose_precision

FULL = get_settings("full")
T4, V100, A100, L4, H100 = (7, 5), (7, 0), (8, 0), (8, 9), (9, 0)


@pytest.mark.parametrize("capability", [T4, V100, (6, 1)], ids=["T4", "V100", "P100"])
def test_pre_ampere_gpus_get_float32_and_a_smaller_batch(capability):
    precision = choose_precision(capability)
    assert precision.dtype == "float32"  # never float16: Qwen2.5 overflows to NaN / "!!!!"
    assert precision.batch(FULL.sft_dpo.batch_size) == FP32_GPU_MAX_BATCH < FULL.sft_dpo.batch_size
    assert precision.batch(2) == 2  # a cap, never more rows than the stage hands over
    assert "float32" in precision.reason and "T4" in precision.reason


@pytest.mark.parametrize("capability", [A100, L4, H100], ids=["A100", "L4", "H100"])
def test_ampere_and_newer_get_bfloat16_and_the_full_batch(capability):
    precision = choose_precision(capability)
    assert precision.dtype == "bfloat16"
    assert precision.batch(FULL.sft_dpo.batch_size) == FULL.sft_dpo.batch_size


def test_cpu_gets_float32():
    assert choose_precision(None).dtype == "float32"


@pytest.mark.parametrize(
    ("capability", "dtype", "batch"), [(T4, "float32", FP32_GPU_MAX_BATCH), (A100, "bfloat16", 16)]
)
def test_full_profile_llms_are_built_with_the_gpus_precision(monkeypatch, capability, dtype, batch):
    monkeypatch.setattr(generation_llms, "cuda_capability", lambda: capability)  # before the cells import it
    cells = notebook_cells("full")
    assert cells.cfg.batch_size == 16
    steps = [cells.pipeline.dag.get_step(name)["step"] for name in cells.pipeline.dag]
    llms = [step.llm for step in steps if hasattr(step, "llm")]
    assert len(llms) == 4  # generator, two closed-book candidates, judge
    for llm in llms:
        assert isinstance(llm, BatchedTransformersLLM)
        assert llm.torch_dtype == dtype and llm.pipeline_batch_size == batch


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    """A random 2-layer Qwen2ForCausalLM with Qwen2.5's config keys and a ChatML tokenizer (offline)."""
    from rehearsal.standins.common import tiny_qwen2

    out = tmp_path_factory.mktemp("tiny-qwen2")
    tiny_qwen2(out)
    return out


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_batch_of_rows_reaches_the_model_in_one_generate_call(tiny_qwen2, monkeypatch):
    from transformers import Qwen2ForCausalLM

    calls: list[tuple[int, ...]] = []
    original = Qwen2ForCausalLM.generate

    def recording_generate(self, *args, **kwargs):
        calls.append(tuple(kwargs["input_ids"].shape))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Qwen2ForCausalLM, "generate", recording_generate)
    rows = [{"title": f"Artículo {i}", "content": "Texto de prueba. " * (i + 1)} for i in range(4)]  # unequal lengths

    cells = notebook_cells("full")

    def generate(batch_size: int) -> list[str]:
        cells.cfg = dataclasses.replace(cells.cfg, batch_size=batch_size)  # what make_llm reads
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task = cells.GroundedInstruction(name="g", llm=cells.make_llm(str(tiny_qwen2), 6, 0.0))
            task.load()
            out = next(task.process([dict(row) for row in rows]))
        return [row["distilabel_metadata"]["raw_output_g"] for row in out]

    batched = generate(batch_size=4)
    assert len(calls) == 1 and calls[0][0] == 4, calls  # one forward pass for the 4 rows
    calls.clear()
    one_by_one = generate(batch_size=1)
    assert [shape[0] for shape in calls] == [1, 1, 1, 1]
    assert batched == one_by_one  # left padding: batching does not change greedy output


def test_batched_llm_reaches_the_pipeline_batch_size(tiny_qwen2, monkeypatch):
    monkeypatch.setattr(generation_llms, "cuda_capability", lambda: (7, 5))  # a T4: float32, 4 rows at a time
    llm = notebook_cells("full").make_llm(str(tiny_qwen2), 4, 0.0)
    llm.load()
    try:
        assert llm._pipeline._batch_size == FP32_GPU_MAX_BATCH
        assert llm._pipeline.tokenizer.padding_side == "left"
    finally:
        llm.unload()
