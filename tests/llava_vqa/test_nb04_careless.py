"""Notebook 04 run like a careless learner, and run again elsewhere: same results.

* Issue 15.2: re-running the LoRA + training section in the same kernel must not
  continue from the model it already trained (the recorded figures of a single run).
* Issue 14: the same seed gave 0.40 and 0.56 accuracy in two runs on one machine.  The
  first run on a machine builds the tiny LLaVA, and the build reseeded the global torch
  generator, so LoRA's random start (drawn afterwards, unseeded) differed from later runs.
  Here one kernel builds the tiny LLaVA (cold cache) and another finds it cached, with
  different ``PYTHONHASHSEED``s: the trained weights must match bit for bit.

Two short kernel runs (COURSE_SETTINGS_OVERRIDES, one CPU thread each so that the
numbers do not depend on the machine's load; issue 13: a third, plain cached run cost 28 s):
the first on a cold cache, the careless one on the warm cache with the training section run
twice.  A probe records the careless kernel's weights after its FIRST training too (right
before the section starts again), so each claim is checked on its own:

* first run vs the careless kernel's first training: cold vs warm cache, hash seed 1 vs 2;
* the careless kernel's second training vs its first: re-running the section starts over.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from careless import ROOT, comparable, kernel_env, results_file, run_notebook

pytestmark = pytest.mark.slow

NOTEBOOK = ROOT / "notebooks" / "04_llava_vqa_lora.ipynb"
SHORT = {
    "llava.train_size": 8,
    "llava.test_size": 4,
    "llava.align_steps": 2,
    "llava.max_steps": 6,
    "llava.save_steps": 3,
    "llava.warmup_steps": 1,
    "llava.batch_size": 2,
    "llava.eval_batch_size": 4,
    "llava.merge_check_rows": 2,
}


def weights_probe(sha_key: str, losses_key: str) -> str:
    """Code that records a digest of the trained weights (LoRA + projector) and the loss curve."""
    return f"""
import hashlib as _hashlib
_digest = _hashlib.sha256()
for _name, _param in sorted(peft_model.named_parameters()):
    if _param.requires_grad:
        _digest.update(_name.encode() + _param.detach().cpu().numpy().tobytes())
nb.results.record({sha_key}=_digest.hexdigest(), {losses_key}=[
    e["loss"] for e in trainer.state.log_history if "loss" in e])
"""


#: Right after training.
WEIGHTS_PROBE = weights_probe("probe_trained_weights_sha256", "probe_losses")
#: Issue 11.3: before the merge cell, wrap ``LlavaForConditionalGeneration.from_pretrained`` so
#: that reloading the base records which training objects are still alive (a T4 cannot hold both).
MERGE_PROBE = """
import gc as _gc, weakref as _weakref
_held = {_n: _weakref.ref(globals()[_n]) for _n in ("trainer", "optimizer", "peft_model", "model")}
_Llava = LlavaForConditionalGeneration


class LlavaForConditionalGeneration(_Llava):
    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        _gc.collect()
        nb.results.record(probe_alive_at_reload=sorted(_n for _n, _r in _held.items() if _r() is not None))
        return _Llava.from_pretrained(*args, **kwargs)
"""
#: Before the LoRA section: in its second pass, the weights the first training left (nothing in the first pass).
FIRST_TRAINING_PROBE = 'if "peft_model" in globals():\n' + textwrap.indent(
    weights_probe("probe_first_training_sha256", "probe_first_losses"), "    "
)
LORA_SECTION = ("lora_config = LoraConfig(", "train_resumable(")
MERGE_CELL = "merge_and_unload("
AFTER_TRAINING = 'desc="afinado"'  # the cell right after training (evaluation of the tuned model)


def cold_cache(tmp: Path) -> Path:
    """A course cache holding the converted SmolLM2 but not the tiny LLaVA (built on first use)."""
    from utils.core.assets import SMOLLM2_HF_TAG, smollm2_hf_dir

    cache = tmp / "cache"
    cache.mkdir()
    (cache / SMOLLM2_HF_TAG).symlink_to(smollm2_hf_dir(), target_is_directory=True)
    return cache


def run(tmp: Path, name: str, *, cache: Path, hash_seed: str, again: tuple[str, str] | None = None) -> dict:
    build = tmp / name
    env = kernel_env(build, SHORT, COURSE_CACHE_DIR=str(cache), PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1")
    probes = {AFTER_TRAINING: WEIGHTS_PROBE, MERGE_CELL: MERGE_PROBE}
    if again:
        probes[again[0]] = FIRST_TRAINING_PROBE
    run_notebook(NOTEBOOK, env=env, again=again, extra_cells=probes)
    return comparable(results_file(build, NOTEBOOK))


def without_probes(results: dict) -> dict:
    return {k: v for k, v in results.items() if not k.startswith("probe_first_")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from utils.core.paths import cache_dir
    from utils.llava_vqa.llava_model import TINY_LLAVA_TAG

    tmp = tmp_path_factory.mktemp("nb04")
    cold = cold_cache(tmp)
    first = run(tmp, "first-on-this-machine", cache=cold, hash_seed="1")
    assert (cold / TINY_LLAVA_TAG / ".complete").is_file(), "the first run must have built the tiny LLaVA"
    warm = cache_dir() if (cache_dir() / TINY_LLAVA_TAG / ".complete").is_file() else cold
    careless = run(tmp, "careless", cache=warm, hash_seed="2", again=LORA_SECTION)
    return first, careless


def test_same_seed_same_weights_on_the_first_and_later_runs(runs):
    first, later = runs  # the careless kernel's FIRST training: cached tiny LLaVA, another hash seed
    assert later["probe_first_training_sha256"] == first["probe_trained_weights_sha256"], (first, later)
    assert later["probe_first_losses"] == first["probe_losses"]


def test_rerunning_the_training_section_gives_a_single_runs_results(runs):
    single, careless = runs
    # Its own first training (no cache or hash-seed difference): the second one started over.
    assert careless["probe_trained_weights_sha256"] == careless["probe_first_training_sha256"]
    assert careless["probe_losses"] == careless["probe_first_losses"]
    # And everything recorded after it is what a single run records.
    assert without_probes(careless) == single
    assert 0 < single["steps"] == SHORT["llava.max_steps"]


def test_the_trained_model_is_freed_before_the_base_is_reloaded_for_merging(runs):
    for results in runs:
        assert results["probe_alive_at_reload"] == [], results["probe_alive_at_reload"]
