"""Notebook 02 in both profiles: mini runs here; full is checked statically.

The full profile loads Hub models on a GPU, which cannot run here.  These tests check that
every argument the notebook passes to distilabel and datasets is accepted by the installed
versions, that the same calls build the same tasks, and that the distilabel Pipeline used
for the Ray section really runs (mini, one article).
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import pytest
from nb02_fixtures import llm_endpoint  # noqa: F401 (fixture)

from utils.core.settings import get_settings
from utils.sft_dpo.distilabel_pipeline import build_pipeline
from utils.sft_dpo.generation_llms import make_llm
from utils.sft_dpo.grounded_instructions import GROUNDED_GRAMMAR
from utils.sft_dpo.preference_pairs import closed_book_tasks, judge_task
from utils.sft_dpo.task_runner import run_task

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from distilabel.models import OpenAILLM, TransformersLLM

MINI, FULL = get_settings("mini"), get_settings("full")


def test_mini_models_are_offline_and_full_models_are_hub_ids():
    for model in (MINI.sft_dpo.generator_model, MINI.sft_dpo.judge_model, *MINI.sft_dpo.candidate_models):
        assert model.startswith("local:")
    for model in (FULL.sft_dpo.generator_model, FULL.sft_dpo.judge_model, *FULL.sft_dpo.candidate_models):
        assert "/" in model and not model.startswith("local:")
    assert MINI.sft_dpo.candidates >= 2 and FULL.sft_dpo.candidates == 3


def test_full_profile_llms_take_only_arguments_transformers_llm_accepts():
    cfg = FULL.sft_dpo
    llm = make_llm(cfg.generator_model, max_new_tokens=cfg.max_new_tokens_instruction, temperature=cfg.temperature,
                   grammar=GROUNDED_GRAMMAR, seed=cfg.seed, settings=FULL)  # fmt: skip
    assert isinstance(llm, TransformersLLM) and llm.model == cfg.generator_model
    accepted = set(inspect.signature(TransformersLLM.generate).parameters) - {"self", "inputs"}
    assert set(llm.generation_kwargs) <= accepted, set(llm.generation_kwargs) - accepted
    assert llm.device_map == "auto" and llm.torch_dtype in {"bfloat16", "float32"}  # never fp16 (Qwen2.5: NaN)
    for task in [*closed_book_tasks(cfg, FULL), judge_task(cfg, FULL)]:
        assert isinstance(task.llm, TransformersLLM)
        assert set(task.llm.generation_kwargs) <= accepted


def test_mini_llm_sends_the_grammar_only_to_the_course_server(monkeypatch):
    cfg = MINI.sft_dpo
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    llm = make_llm(
        cfg.generator_model, max_new_tokens=64, temperature=0.5, grammar='root ::= "x"', seed=3, settings=MINI
    )
    assert isinstance(llm, OpenAILLM)
    accepted = set(inspect.signature(OpenAILLM.agenerate).parameters) - {"self", "input"}
    assert set(llm.generation_kwargs) <= accepted
    assert llm.generation_kwargs["extra_body"] == {"grammar": 'root ::= "x"', "seed": 3}
    monkeypatch.setenv("LLM_BASE_URL", "http://localhost:1234/v1")
    monkeypatch.setenv("LLM_MODEL", "otro-modelo")
    other = make_llm(cfg.generator_model, max_new_tokens=64, temperature=0.5, grammar='root ::= "x"', settings=MINI)
    assert "extra_body" not in other.generation_kwargs and other.model == "otro-modelo"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_full_profile_llm_class_really_generates_on_cpu():
    """The full profile's class (TransformersLLM, device_map="auto") with the
    installed transformers: the same call on SmolLM2's local folder instead of a Hub id."""
    from utils.core.assets import smollm2_hf_dir
    from utils.sft_dpo.grounded_instructions import GroundedInstruction

    llm = make_llm(str(smollm2_hf_dir()), max_new_tokens=8, temperature=0.7, grammar=GROUNDED_GRAMMAR, seed=1)
    assert isinstance(llm, TransformersLLM)
    task = GroundedInstruction(llm=llm)
    row = run_task(task, [{"title": "Luna", "content": "La Luna es el satélite natural de la Tierra."}])[0]
    assert llm._pipeline is None  # the weights were released after the stage
    raw = row["distilabel_metadata"][f"raw_output_{task.name}"]
    assert isinstance(raw, str) and raw.strip()  # it generated text (8 tokens cannot hold the format)
    assert row["parse_error"] in {"no_format", "empty", "truncated"}


def test_full_corpus_is_streamed_with_arguments_load_dataset_accepts():
    from datasets import load_dataset

    params = inspect.signature(load_dataset).parameters
    assert {"path", "name", "split", "streaming"} <= set(params)
    assert FULL.sft_dpo.wikipedia_dataset == "wikimedia/wikipedia" and FULL.sft_dpo.wikipedia_config.endswith(".es")


@pytest.mark.parametrize("settings", [MINI, FULL], ids=["mini", "full"])
def test_the_pipeline_for_ray_is_built_from_the_same_tasks(settings):
    rows = [{"article_id": "1", "title": "Luna", "content": "La Luna es el satélite de la Tierra."}]
    pipeline = build_pipeline(settings.sft_dpo, rows, settings=settings, replicas=2, gpus_per_replica=1)
    names = set(pipeline.dag.G.nodes)
    assert {
        "articulos",
        "instruccion_y_respuesta",
        "solo_parseadas",
        "agrupar",
        "candidatas",
        "juez_ultrafeedback",
    } <= names
    assert {f"sin_contexto_{i}" for i in range(1, settings.sft_dpo.candidates)} <= names
    assert callable(pipeline.ray)
    grounded = pipeline.dag.get_step("instruccion_y_respuesta")["step"]
    assert grounded.resources.replicas == 2 and grounded.resources.gpus == 1


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydantic 2.11 notices inside distilabel
def test_the_pipeline_runs_end_to_end_on_the_local_server(llm_endpoint, tmp_path, monkeypatch):
    """The DAG behind `pipeline.ray()` really runs (locally, mini, one short article)."""
    monkeypatch.setenv("DISTILABEL_CACHE_DIR", str(tmp_path))
    cfg = dataclasses.replace(
        MINI.sft_dpo, max_new_tokens_instruction=200, max_new_tokens_answer=64, max_new_tokens_judge=160
    )
    rows = [{"article_id": "1", "title": "Luna",
             "content": "La Luna es el único satélite natural de la Tierra. Está a unos 384 400 kilómetros."}]  # fmt: skip
    distiset = build_pipeline(cfg, rows, settings=MINI).run(use_cache=False)
    out = distiset["default"]["train"]
    assert len(out) == 1  # the grammar makes the reply parse, so the row reaches the judge
    row = out[0]
    assert row["parse_error"] is None and row["instruction"].endswith("?")
    assert len(row["generations"]) == cfg.candidates == len(row["ratings"])
