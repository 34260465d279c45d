"""Notebook 02 in both profiles: mini runs here; full is checked statically.

The full profile loads Hub models on a GPU, which cannot run here.  These tests check that
every argument the notebook's own cells (``make_llm``, the ``Pipeline``: its ``definitions``
cells, run by :func:`nb02_fixtures.notebook_cells`) pass to distilabel and datasets is
accepted by the installed versions, that both profiles build the same graph, and that the
pipeline really runs (mini, one article).
"""

import inspect
import time
import warnings

import pytest
from distilabel.steps import StepInput
from distilabel.steps import step as distilabel_step
from nb02_fixtures import llm_endpoint, notebook_cells  # noqa: F401 (fixture)

from utils.core.settings import get_settings
from utils.sft_dpo.grounded_instructions import GROUNDED_GRAMMAR

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


def _llm_steps(pipeline):
    steps = [pipeline.dag.get_step(name)["step"] for name in pipeline.dag]
    return [step for step in steps if hasattr(step, "llm")]


def test_full_profile_llms_take_only_arguments_transformers_llm_accepts():
    cells = notebook_cells("full")
    cfg = FULL.sft_dpo
    llm = cells.make_llm(
        cfg.generator_model, cfg.max_new_tokens_instruction, cfg.temperature, GROUNDED_GRAMMAR, cfg.seed
    )
    assert isinstance(llm, TransformersLLM) and llm.model == cfg.generator_model
    accepted = set(inspect.signature(TransformersLLM.generate).parameters) - {"self", "inputs"}
    assert set(llm.generation_kwargs) <= accepted, set(llm.generation_kwargs) - accepted
    assert llm.device_map == "auto" and llm.torch_dtype in {"bfloat16", "float32"}  # never fp16 (Qwen2.5: NaN)
    steps = _llm_steps(cells.pipeline)
    assert len(steps) == 1 + len(cfg.candidate_models) + 1  # generator, closed-book candidates, judge
    for step in steps:
        assert isinstance(step.llm, TransformersLLM)
        assert set(step.llm.generation_kwargs) <= accepted


def test_mini_llm_sends_the_grammar_only_to_the_course_server(monkeypatch):
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    make_llm = notebook_cells("mini").make_llm
    llm = make_llm(MINI.sft_dpo.generator_model, 64, 0.5, 'root ::= "x"', 3)
    assert isinstance(llm, OpenAILLM)
    accepted = set(inspect.signature(OpenAILLM.agenerate).parameters) - {"self", "input"}
    assert set(llm.generation_kwargs) <= accepted
    assert llm.generation_kwargs["extra_body"] == {"grammar": 'root ::= "x"', "seed": 3}
    monkeypatch.setenv("LLM_BASE_URL", "http://localhost:1234/v1")
    monkeypatch.setenv("LLM_MODEL", "otro-modelo")
    other = make_llm(MINI.sft_dpo.generator_model, 64, 0.5, 'root ::= "x"')
    assert "extra_body" not in other.generation_kwargs and other.model == "otro-modelo"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_full_profile_llm_class_really_generates_on_cpu():
    """The full profile's class (TransformersLLM, device_map="auto") with the
    installed transformers: the same call on SmolLM2's local folder instead of a Hub id."""
    from utils.core.assets import smollm2_hf_dir

    cells = notebook_cells("full")
    llm = cells.make_llm(str(smollm2_hf_dir()), 8, 0.7, GROUNDED_GRAMMAR, 1)
    assert isinstance(llm, TransformersLLM)
    task = cells.GroundedInstruction(name="g", llm=llm)
    task.load()
    row = next(task.process([{"title": "Luna", "content": "La Luna es el satélite natural de la Tierra."}]))[0]
    raw = row["distilabel_metadata"]["raw_output_g"]
    assert isinstance(raw, str) and raw.strip()  # it generated text (8 tokens cannot hold the format)
    assert row["parse_error"] in {"no_format", "empty", "truncated"}


def test_full_corpus_is_streamed_with_arguments_load_dataset_accepts():
    from datasets import load_dataset

    params = inspect.signature(load_dataset).parameters
    assert {"path", "name", "split", "streaming"} <= set(params)
    assert FULL.sft_dpo.wikipedia_dataset == "wikimedia/wikipedia" and FULL.sft_dpo.wikipedia_config.endswith(".es")


@pytest.mark.parametrize("profile", ["mini", "full"])
def test_both_profiles_build_the_same_graph(profile):
    settings = get_settings(profile)
    rows = [{"article_id": "1", "title": "Luna", "content": "La Luna es el satélite de la Tierra."}]
    pipeline = notebook_cells(profile, inputs=rows).pipeline
    closed = {f"sin_contexto_{i}" for i in range(1, settings.sft_dpo.candidates)}
    assert set(pipeline.dag) == {"articulos", "instruccion_y_respuesta", "sft", "solo_bien_formadas", "agrupar",
                                 "candidatas", "juez"} | closed  # fmt: skip
    assert set(pipeline.dag.leaf_steps) == {"sft", "juez"}
    assert callable(pipeline.ray)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pydantic 2.11 notices inside distilabel
def test_the_pipeline_runs_end_to_end_on_the_local_server(llm_endpoint, tmp_path, monkeypatch):
    """The notebook's pipeline really runs (mini, one short article): both leaves, one row each."""
    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path))
    rows = [{"article_id": "1", "title": "Luna",
             "content": "La Luna es el único satélite natural de la Tierra. Está a unos 384 400 kilómetros."}]  # fmt: skip
    cells = notebook_cells("mini", inputs=rows)
    distiset = cells.pipeline.run(use_cache=False)
    assert len(distiset["sft"]["train"]) == 1
    row = distiset["juez"]["train"][0]  # the grammar makes the reply parse, so the row reaches the judge
    assert row["parse_error"] is None and row["instruction"].endswith("?")
    assert len(row["generations"]) == MINI.sft_dpo.candidates == len(row["ratings"])
    assert row["sources"][0] == "con_contexto"


@distilabel_step(inputs=["instruction"])
def Echo(inputs: StepInput):
    """Whatever reaches it (nothing, when the filter keeps no row)."""
    yield inputs


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_pipeline_where_no_reply_parses_stops_instead_of_hanging(tmp_path, monkeypatch):
    """The notebook's KeepParsed filter ends the run when no row parses (what random stand-ins give).

    distilabel 1.5.3 waits forever for a step that receives no row at all: with the old filter (a
    normal step yielding an empty batch) this pipeline hung; the rehearsal of notebook 02 hit it.
    """
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts

    monkeypatch.setenv("COURSE_BUILD_DIR", str(tmp_path))
    monkeypatch.setenv("DISTILABEL_LOG_LEVEL", "WARNING")
    cells = notebook_cells("mini", inputs=[], module=f"nb02_cells_filter_{time.monotonic_ns()}")
    rows = [{"instruction": None, "parse_error": "sin formato"} for _ in range(3)]
    with Pipeline(name="filtro-vacio", cache_dir=tmp_path / "cache") as pipeline:
        load = LoadDataFromDicts(name="filas", data=rows, batch_size=3)
        keep = cells.KeepParsed(name="solo_bien_formadas")
        after = Echo(name="candidatas")
        load >> keep >> after
    started = time.monotonic()
    distiset = pipeline.run(use_cache=False)
    assert time.monotonic() - started < 120
    assert "candidatas" not in distiset or len(distiset["candidatas"]["train"]) == 0
