"""Run a distilabel ``RayPipeline`` with a watchdog: a dead step or a timeout fails clearly.

distilabel 1.5.3 runs each step replica as a Ray actor created without restarts.  When the
process of one dies mid-run (out of memory, a node lost, a SIGKILL), nothing restarts it and
nothing reports it: ``pipeline.ray().run()`` waits for its batches forever (measured on Ray
2.60, ``tests/sft_dpo/test_pipeline_ray.py``).  :func:`run_with_watchdog` runs the pipeline in
the calling thread (distilabel installs a SIGINT handler, which only the main thread may do)
and watches it from another:

* every ``poll_s`` it reads Ray's actor table: an actor of this pipeline and this job that
  is ``DEAD`` for any reason but going out of scope (how a finished step ends) or being killed
  on purpose is a crash (``WORKER_DIED``: its process died; ``NODE_DIED``…);
* after ``timeout_s`` it gives up.

Either way it stops the pipeline's output loop (distilabel's own stop message), kills the
pipeline's remaining actors and raises :class:`PipelineStalledError`, in Spanish, naming the
step and what to relaunch.  ``use_cache=True`` makes the relaunch resume from the batches
already done.

The actor table comes from ``ray._private.state.actors`` (Ray's developer API): the public
state API needs the dashboard, which the course's local cluster does not start.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from typing import Any

from utils.core.errors import CourseError

#: Why Ray ends an actor without it being a failure: its handles went out of scope or its
#: references were deleted (how a finished distilabel step ends; both seen with Ray 2.60), or
#: the pipeline itself killed it.
_NORMAL_ENDS = ("OUT_OF_SCOPE", "REF_DELETED", "RAY_KILL")
_QUEUES = re.compile(r"^(input-queue-.+|log-queue|output-queue|load-queue)$")


class PipelineStalledError(CourseError):
    """A distilabel pipeline on Ray lost a step (or ran out of time); the message says what to relaunch."""


def pipeline_actors(pipeline_name: str, since: float = 0.0) -> list[dict[str, Any]]:
    """This job's Ray actors of the pipeline created after ``since`` (epoch seconds).

    Each as ``name`` (without the ``distilabel-<pipeline>-`` prefix), ``state``, ``reason``
    (why it died) and ``pid``.
    """
    import ray
    from ray._private import state

    prefix = f"distilabel-{pipeline_name}-"
    job = ray.get_runtime_context().get_job_id()
    found = []
    for info in state.actors().values():
        name = info.get("Name") or ""
        if not name.startswith(prefix) or info.get("JobID") != job or (info.get("StartTime") or 0) < since * 1000:
            continue
        reason = re.findall(r"reason: (\w+)", str(info.get("DeathCause") or ""))
        found.append(
            {
                "name": name[len(prefix) :],
                "state": info.get("State"),
                "reason": reason[0] if reason else None,
                "pid": info.get("Pid"),
            }
        )
    return found


def dead_steps(pipeline_name: str, since: float = 0.0) -> list[dict[str, Any]]:
    """Actors of the pipeline that died abnormally (a crashed step replica or queue)."""
    return [
        a for a in pipeline_actors(pipeline_name, since) if a["state"] == "DEAD" and a["reason"] not in _NORMAL_ENDS
    ]


def _describe(actor: dict[str, Any]) -> str:
    name = actor["name"]
    if _QUEUES.match(name):
        return f"la cola interna «{name}»"
    step, _, replica = name.rpartition("-")
    return f"el paso «{step}» (réplica {replica})"


def _kill(pipeline, since: float, queues: bool) -> None:
    """Kill the pipeline's live actors (its steps; its queues too when ``queues``)."""
    import ray

    for actor in pipeline_actors(pipeline.name, since):
        if actor["state"] == "ALIVE" and (queues or not _QUEUES.match(actor["name"])):
            with contextlib.suppress(Exception):  # it may end on its own meanwhile
                ray.kill(ray.get_actor(f"distilabel-{pipeline.name}-{actor['name']}"))


def _stop(pipeline, since: float) -> None:
    """Unblock ``run()`` (distilabel's stop message) and kill the pipeline's live steps."""
    with contextlib.suppress(Exception):  # the queue actor may be the one that died
        pipeline._output_queue.put(None)  # what distilabel's own stop sends: the output loop ends
    _kill(pipeline, since, queues=False)


def ray_initialized() -> bool:
    import ray

    return ray.is_initialized()


def run_with_watchdog(pipeline, *, timeout_s: float, poll_s: float = 1.0, **run_kwargs: Any):
    """``pipeline.run(**run_kwargs)`` for a ``RayPipeline`` (``Pipeline.ray()``), or a clear error.

    Raises:
        PipelineStalledError: a step's actor died (distilabel would wait forever) or the
            run took longer than ``timeout_s``.
    """
    failure: dict[str, str] = {}
    done = threading.Event()
    since = time.time() - 1.0  # actors of earlier runs in this job (finished or dead) are not ours

    def watch() -> None:
        import ray

        deadline = time.monotonic() + timeout_s
        while not done.wait(poll_s):
            dead = dead_steps(pipeline.name, since) if ray.is_initialized() else []
            if dead:
                what = ", ".join(f"{_describe(a)}: {a['reason'] or 'sin motivo'}" for a in dead)
                failure["message"] = (
                    f"En Ray ha muerto {what}, del pipeline «{pipeline.name}». distilabel 1.5.3 no lo "
                    "reinicia y se quedaría esperando sin error, así que lo hemos parado. Relanza "
                    "`pipeline.ray().run(use_cache=True)` (o vuelve a ejecutar la celda): con la caché sigue "
                    "desde los lotes ya terminados. Si murió por falta de memoria, baja el `input_batch_size` "
                    "de ese paso o dale más memoria con `StepResources(memory=…)`."
                )
            elif time.monotonic() > deadline:
                failure["message"] = (
                    f"El pipeline «{pipeline.name}» no ha terminado en {timeout_s:.0f} s y lo hemos parado. "
                    "Si sus pasos no llegaron a cargarse, el clúster no tiene CPU (o GPU) para todos: cada paso "
                    "es un actor que pide 1 CPU lógica (`ray start --num-cpus=N` con N ≥ pasos, o "
                    "`StepResources(cpus=…)`). Si no, mira el registro de Ray por si un paso está atascado, y relanza "
                    "`pipeline.ray().run(use_cache=True)` (sigue desde los lotes ya terminados) con un "
                    "`timeout_s` mayor si el trabajo es así de largo."
                )
            if failure:
                _stop(pipeline, since)
                return

    watcher = threading.Thread(target=watch, name="distilabel-ray-watchdog", daemon=True)
    watcher.start()
    try:
        distiset = pipeline.run(**run_kwargs)
    except Exception as exc:
        if failure:
            raise PipelineStalledError(failure["message"]) from exc
        raise
    finally:
        done.set()
        watcher.join()
        # distilabel leaves its named queue actors alive: a relaunch in this process would find
        # their names taken (ActorAlreadyExistsError).  They are of no use once run() is over.
        if ray_initialized():
            _kill(pipeline, since, queues=True)
    if failure:
        raise PipelineStalledError(failure["message"])
    return distiset
