"""The notebook's stages wired as one distilabel ``Pipeline``: the way to scale them out.

The notebook runs each task standalone so it can count what each stage keeps.  For a big
run (thousands of articles, several GPUs) the same tasks go into a DAG that distilabel
schedules itself, batch by batch, with caching and recovery — locally
(``pipeline.run()``) or on a Ray cluster (``pipeline.ray().run()``), where every step can
have replicas pinned to GPUs (``StepResources(replicas=…, gpus=…)``)::

    load ─▶ instrucción+respuesta ─▶ solo_parseadas ─┬▶ sin_contexto_1 ─┐
                                                      └▶ sin_contexto_k ─┴▶ agrupar ─▶ candidatas ─▶ juez
"""

# No `from __future__ import annotations`: distilabel reads the `StepInput` hints at runtime.

import warnings
from typing import Any

from utils.core.settings import CourseSettings, SftDpoSettings
from utils.sft_dpo.generation_llms import make_llm
from utils.sft_dpo.grounded_instructions import GROUNDED_GRAMMAR, GroundedInstruction
from utils.sft_dpo.preference_pairs import GROUNDED_SOURCE, closed_book_tasks, judge_task

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.pipeline import Pipeline
    from distilabel.steps import GroupColumns, LoadDataFromDicts, StepInput, StepResources, step


@step(inputs=["instruction", "parse_error"], outputs=[])
def KeepParsed(inputs: StepInput):
    """Drop rows whose reply did not parse (``parse_error`` set)."""
    yield [row for row in inputs if row.get("parse_error") is None]


@step(inputs=["response", "closed_generations"], outputs=["generations", "sources"])
def CollectCandidates(inputs: StepInput):
    """``generations`` = the grounded answer first, then the closed-book answers."""
    for row in inputs:
        row["generations"] = [row["response"], *row["closed_generations"]]
        row["sources"] = [
            GROUNDED_SOURCE,
            *[f"sin_contexto_{i}" for i in range(1, len(row["closed_generations"]) + 1)],
        ]
    yield inputs


def build_pipeline(
    cfg: SftDpoSettings,
    rows: list[dict[str, Any]],
    *,
    settings: CourseSettings | None = None,
    gpus_per_replica: int | None = None,
    replicas: int = 1,
) -> Pipeline:
    """A pipeline over ``rows`` (``title``, ``content``…) with the notebook's tasks.

    Args:
        replicas / gpus_per_replica: copies of each LLM step and GPUs each one gets (Ray).
    """
    resources = StepResources(replicas=replicas, gpus=gpus_per_replica)
    with Pipeline(
        name="curso-02-sft-dpo", description="Genstruct-style SFT + UltraFeedback DPO, in Spanish"
    ) as pipeline:
        load = LoadDataFromDicts(name="articulos", data=rows, batch_size=cfg.batch_size)
        grounded = GroundedInstruction(
            name="instruccion_y_respuesta",
            llm=make_llm(cfg.generator_model, max_new_tokens=cfg.max_new_tokens_instruction,
                         temperature=cfg.temperature, grammar=GROUNDED_GRAMMAR, seed=cfg.seed, settings=settings,
                         batch_size=cfg.batch_size),
            input_batch_size=cfg.batch_size,
            resources=resources,
        )  # fmt: skip
        keep = KeepParsed(name="solo_parseadas")
        closed = closed_book_tasks(cfg, settings)
        for task in closed:
            task.input_batch_size = cfg.batch_size
            task.resources = resources
        group = GroupColumns(name="agrupar", columns=["generation"], output_columns=["closed_generations"])
        collect = CollectCandidates(name="candidatas")
        judge = judge_task(cfg, settings)
        judge.input_batch_size = cfg.batch_size
        judge.resources = resources
        load >> grounded >> keep >> closed >> group >> collect >> judge
    return pipeline
