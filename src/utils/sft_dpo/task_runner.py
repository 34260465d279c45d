"""Run a distilabel task over rows, resumably, with a progress bar.

distilabel tasks can run *standalone* (``task.load()``, then ``next(task.process(rows))``)
or inside a ``Pipeline``.  The notebook runs each stage standalone, so that it can count
what every stage keeps and drops; :func:`run_task` adds what a long job needs:

* a ``tqdm`` progress bar over batches;
* a JSONL cache: every finished batch is appended to ``cache`` at once, keyed by a hash
  of the exact prompt, model and generation settings.  Re-running after an interruption
  (or re-running the notebook) only generates the rows that are missing; changing the
  template, the model or its settings changes the keys, so stale answers are never reused.

Each cached row also records which *session* (this Python process: one notebook kernel)
generated it and its share of the wall time.  Re-running a cell in the same kernel reads
its own rows back and reports the same ``generated`` rows, tokens and seconds as the first
run, so a careless re-run does not change what the notebook records; rows written by an
earlier kernel count as ``cached``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

#: This process (one notebook kernel): rows it generated count as generated on a re-run.
SESSION_ID = uuid.uuid4().hex
_clock = time.perf_counter


def row_key(task: Any, row: dict[str, Any]) -> str:
    """Hash of what determines the output: task type and name, prompt, model, settings."""
    llm = task.llm
    payload = {
        "task": f"{type(task).__name__}:{task.name}",
        "prompt": task.format_input(row),
        "model": getattr(llm, "model_name", type(llm).__name__),
        "generation": getattr(llm, "generation_kwargs", {}),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


def _read_cache(path: Path | None) -> dict[str, dict]:
    """``key`` → cache entry (``row``, and ``session``/``seconds`` when recorded)."""
    if path is None or not path.is_file():
        return {}
    done: dict[str, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
            done[item["key"]] = {
                "row": item["row"],
                "session": item.get("session"),
                "seconds": item.get("seconds", 0.0),
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a line cut short by an interruption: that row is generated again
    return done


def run_task(
    task: Any,
    rows: Sequence[dict[str, Any]],
    *,
    cache: Path | None = None,
    batch_size: int = 4,
    desc: str | None = None,
    stats: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    """Run ``task`` on ``rows``; return one output row per input row, in order.

    The task must produce one row per input (``num_generations=1`` or
    ``group_generations=True``).  Rows found in ``cache`` are not generated again.

    Args:
        stats: if given, filled with the rows ``generated`` in this kernel (now, or by an
            earlier run of the same call) and ``cached`` (from an earlier kernel), and the
            ``output_tokens`` and wall ``seconds`` (model loading included) of the generated
            rows, so that a speed measured over them is honest and a re-run reports the same.
    """
    if stats is not None:
        stats.update(generated=0, cached=0, output_tokens=0, seconds=0.0)
    if not rows:
        return []
    started = _clock()
    task.load()
    try:
        keys = [row_key(task, row) for row in rows]
        done = _read_cache(cache)
        todo = [i for i, key in enumerate(keys) if key not in done]
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=desc or task.name, unit="fila")
        for batch in batches:
            outputs = next(task.process([dict(rows[i]) for i in batch]))
            if len(outputs) != len(batch):
                raise RuntimeError(
                    f"Task {task.name!r} returned {len(outputs)} rows for {len(batch)} inputs; "
                    "use num_generations=1 or group_generations=True."
                )
            now = _clock()
            share = (now - started) / len(batch)  # the first batch also carries the model load
            started = now
            lines = []
            for i, out in zip(batch, outputs):
                done[keys[i]] = {"row": out, "session": SESSION_ID, "seconds": share}
                lines.append(json.dumps({"key": keys[i], **done[keys[i]]}, ensure_ascii=False, default=str))
            if cache is not None:
                with cache.open("a", encoding="utf-8") as handle:
                    handle.write("\n".join(lines) + "\n")
            bar.update(len(batch))
        bar.close()
    finally:
        task.unload()
        release_model_memory(task.llm)
    if stats is not None:
        mine = [done[key] for key in keys if done[key]["session"] == SESSION_ID]
        stats.update(
            generated=len(mine),
            cached=len(keys) - len(mine),
            output_tokens=output_tokens([entry["row"] for entry in mine], task.name),
            seconds=round(sum(entry["seconds"] for entry in mine), 2),
        )
    return [done[key]["row"] for key in keys]


def release_model_memory(llm: Any) -> None:
    """Free the weights of an in-process model (``TransformersLLM``) once its stage is done.

    distilabel's ``unload()`` keeps the ``transformers`` pipeline alive, so on a T4 the
    generator, the candidate models and the judge would pile up in GPU memory.  Dropping
    the pipeline lets the stages run one model at a time; ``load()`` builds it again.
    """
    if getattr(llm, "_pipeline", None) is None:
        return
    llm._pipeline = None
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def output_tokens(rows: Sequence[dict[str, Any]], task_name: str) -> int:
    """Tokens the LLM generated for ``task_name`` over ``rows`` (distilabel's statistics)."""
    total = 0
    for row in rows:
        stats = (row.get("distilabel_metadata") or {}).get(f"statistics_{task_name}") or {}
        tokens = stats.get("output_tokens") or 0
        total += sum(tokens) if isinstance(tokens, list) else int(tokens)
    return total
