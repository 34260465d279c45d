"""Run a distilabel ``RayPipeline`` with a watchdog: a dead step or a timeout fails clearly.

distilabel 1.5.3 runs each step replica as a Ray actor created without restarts.  When the
process of one dies mid-run (out of memory, a node lost, a SIGKILL), nothing restarts it and
nothing reports it: ``pipeline.ray().run()`` waits forever.  Why, measured with py-spy on Ray
2.60: the dead replica never sends its "unloaded" message, so the driver's
``_finalize_pipeline_execution`` loops on ``while self._is_step_running(step)`` for good, and
the same happens to any step killed on purpose; sending distilabel's own stop message (``None``
on the output queue) only leads the driver into that loop.  A watchdog in the driver's process
cannot end it.

So :func:`run_with_watchdog` runs the driver in a **child process** (``python -m
utils.sft_dpo.ray_watchdog``) joined to the same Ray cluster, and watches it from here:

* every ``poll_s`` it reads Ray's actor table: an actor of the child's job that is ``DEAD`` for
  any reason but going out of scope (how a finished step ends) is a crash (``WORKER_DIED``:
  its process died; ``NODE_DIED``…);
* after ``timeout_s`` it gives up.

Either way it ends the child (SIGTERM, then SIGKILL), makes sure the job's actors are gone
(Ray ends them with their driver; stragglers are killed) and raises
:class:`PipelineStalledError`, in Spanish, naming the step and what to relaunch: from scratch
(``use_cache=False``), because one measured relaunch with ``use_cache=True`` after the judge
was killed mid-batch waited past 600 s (the batch the dead step held is never given back).
The child pickles the ``Distiset`` (or the exception of ``run()``) back; its log is relayed
to this process's standard output.

The actor table comes from ``ray._private.state.actors`` (Ray's developer API): the public
state API needs the dashboard, which the course's local cluster does not start.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path
from typing import Any

from utils.core.errors import CourseError
from utils.services.ray_cluster import RayClusterError, connect
from utils.services.supervisor import kill_group

#: Why Ray ends an actor without it being a failure: its handles went out of scope or its
#: references were deleted (how a finished distilabel step ends; both seen with Ray 2.60), or
#: it was killed on purpose.
_NORMAL_ENDS = ("OUT_OF_SCOPE", "REF_DELETED", "RAY_KILL")
_QUEUES = re.compile(r"^(input-queue-.+|log-queue|output-queue|load-queue)$")
_LOCKS = {type(threading.Lock()): threading.Lock, type(threading.RLock()): threading.RLock}


class PipelineStalledError(CourseError):
    """A distilabel pipeline on Ray lost a step (or ran out of time); the message says what to relaunch."""


def pipeline_actors(pipeline_name: str, since: float = 0.0, job: str | None = None) -> list[dict[str, Any]]:
    """Ray actors of the pipeline created after ``since`` (epoch seconds), of job ``job`` if given.

    Each as ``name`` (without the ``distilabel-<pipeline>-`` prefix), ``state``, ``reason``
    (why it died) and ``pid``.
    """
    from ray._private import state

    prefix = f"distilabel-{pipeline_name}-"
    found = []
    for info in state.actors().values():
        name = info.get("Name") or ""
        if not name.startswith(prefix) or (job is not None and info.get("JobID") != job):
            continue
        if (info.get("StartTime") or 0) < since * 1000:
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


def dead_steps(pipeline_name: str, job: str) -> list[dict[str, Any]]:
    """Actors of the pipeline in ``job`` that died abnormally (a crashed step replica or queue)."""
    return [
        a for a in pipeline_actors(pipeline_name, job=job) if a["state"] == "DEAD" and a["reason"] not in _NORMAL_ENDS
    ]


def _describe(actor: dict[str, Any]) -> str:
    name = actor["name"]
    if _QUEUES.match(name):
        return f"la cola interna «{name}»"
    step, _, replica = name.rpartition("-")
    return f"el paso «{step}» (réplica {replica})"


def _dumps(obj: Any) -> bytes:
    """cloudpickle ``obj``; the pipeline's thread locks travel as fresh ones (a lock cannot be pickled)."""
    from ray import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, o):
            fresh = _LOCKS.get(type(o))
            return (fresh, ()) if fresh is not None else super().reducer_override(o)

    buffer = io.BytesIO()
    Pickler(buffer).dump(obj)
    return buffer.getvalue()


def _cluster_address(pipeline) -> str:
    """The address of the cluster this process is joined to (joining the pipeline's if it names one)."""
    import ray

    if not ray.is_initialized():
        if not pipeline._ray_head_node_url:
            raise RayClusterError(
                "Para ejecutar el pipeline en Ray, únete antes a un clúster: "
                '`utils.services.ray_cluster.connect("127.0.0.1:PUERTO")` (arráncalo con `python -m '
                "utils.services.ray_cluster start`), o pasa su dirección con `pipeline.ray(ray_head_node_url=…)`."
            )
        connect(pipeline._ray_head_node_url, logging_level="ERROR")
    return ray.get_runtime_context().gcs_address


class _Child:
    """The child process that runs the pipeline's driver, its files and its log."""

    def __init__(self, pipeline, address: str, run_kwargs: dict[str, Any]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="distilabel-ray-"))
        self.namespace = f"distilabel-watchdog-{uuid.uuid4().hex[:12]}"
        job = {"address": address, "namespace": self.namespace, "pipeline": pipeline, "run_kwargs": run_kwargs}
        (self.folder / "job.pkl").write_bytes(_dumps(job))
        env = dict(os.environ)  # the child unpickles the pipeline's classes: give it this process's imports
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        self.log = self.folder / "driver.log"
        self._offset = 0
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "utils.sft_dpo.ray_watchdog", str(self.folder)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: a Ctrl-C here reaches only the watchdog
            )

    @property
    def job(self) -> str | None:
        with contextlib.suppress(OSError):
            return (self.folder / "job_id").read_text().strip() or None
        return None

    @property
    def finished(self) -> bool:
        return (self.folder / "result.pkl").exists()

    def relay_log(self) -> None:
        """Copy what the child logged since last time to this process's standard output."""
        with contextlib.suppress(OSError), open(self.log, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read()
            self._offset += len(chunk)
            if chunk:
                sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                sys.stdout.flush()

    def end(self, grace_s: float = 5.0) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after ``grace_s``."""
        kill_group(self.proc.pid, lambda _pid: self.proc.poll() is None, timeout=grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):  # anything it started
            os.killpg(self.proc.pid, signal.SIGKILL)

    def reap_actors(self, pipeline_name: str, timeout_s: float = 30.0) -> None:
        """Wait until Ray has ended the child job's actors (it does when the driver dies); kill stragglers."""
        import ray

        job = self.job
        if job is None or not ray.is_initialized():
            return
        deadline = time.monotonic() + timeout_s
        while True:
            alive = [a for a in pipeline_actors(pipeline_name, job=job) if a["state"] != "DEAD"]
            if not alive:
                return
            if time.monotonic() > deadline:
                for actor in alive:
                    with contextlib.suppress(Exception):  # it may end on its own meanwhile
                        name = f"distilabel-{pipeline_name}-{actor['name']}"
                        ray.kill(ray.get_actor(name, namespace=self.namespace))
                return
            time.sleep(0.5)

    def result(self):
        from ray import cloudpickle

        outcome = cloudpickle.loads((self.folder / "result.pkl").read_bytes())
        if outcome[0] == "ok":
            return outcome[1]
        exc = outcome[1]
        with contextlib.suppress(AttributeError):
            exc.add_note(f"(en el proceso que ejecutaba el pipeline)\n{outcome[2]}")
        raise exc

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def run_with_watchdog(pipeline, *, timeout_s: float, poll_s: float = 1.0, **run_kwargs: Any):
    """``pipeline.run(**run_kwargs)`` for a ``RayPipeline`` (``Pipeline.ray()``), or a clear error.

    The driver runs in a child process joined to this process's Ray cluster (join one first:
    :func:`utils.services.ray_cluster.connect`), so that a stalled run can really be ended.

    Raises:
        PipelineStalledError: a step's actor died (distilabel would wait forever), the run took
            longer than ``timeout_s``, or the child process died without a result.
        RayClusterError: this process is not joined to a Ray cluster.
        Exception: whatever ``pipeline.run()`` raised in the child.
    """
    child = _Child(pipeline, _cluster_address(pipeline), run_kwargs)
    try:
        failure = _watch(child, pipeline.name, timeout_s, poll_s)
        if failure:
            raise PipelineStalledError(failure)
        if not child.finished:
            raise PipelineStalledError(
                f"El proceso que ejecutaba el pipeline «{pipeline.name}» en Ray terminó sin resultado (código "
                f"{child.proc.returncode}); arriba está su registro. Corrige lo que indica y relanza "
                "`pipeline.ray().run(use_cache=False)`, que empieza de cero (con `use_cache=True` distilabel "
                "puede quedarse esperando un lote que tenía el proceso muerto)."
            )
        return child.result()
    finally:
        child.cleanup()


def _watch(child: _Child, name: str, timeout_s: float, poll_s: float) -> str | None:
    """Watch ``child`` until it ends, a step dies or time runs out; end it. The failure's message, if any."""
    deadline = time.monotonic() + timeout_s
    failure = None
    try:
        while not child.finished and child.proc.poll() is None:
            job = child.job
            dead = dead_steps(name, job) if job else []
            if child.finished:  # it ended between the two looks: the deaths are its normal end
                break
            if dead:
                what = ", ".join(f"{_describe(a)}: {a['reason'] or 'sin motivo'}" for a in dead)
                failure = (
                    f"En Ray ha muerto {what}, del pipeline «{name}». distilabel 1.5.3 no lo "
                    "reinicia y se quedaría esperando sin error, así que lo hemos parado. Relanza "
                    "`pipeline.ray().run(use_cache=False)` (o vuelve a ejecutar la celda), que empieza de cero: "
                    "con `use_cache=True` distilabel puede quedarse esperando el lote que tenía el paso muerto. "
                    "Si murió por falta de memoria, baja el `input_batch_size` de ese paso o dale más memoria con "
                    "`StepResources(memory=…)`."
                )
            elif time.monotonic() > deadline:
                failure = (
                    f"El pipeline «{name}» no ha terminado en {timeout_s:.0f} s y lo hemos parado. "
                    "Si sus pasos no llegaron a cargarse, el clúster no tiene CPU (o GPU) para todos: cada paso "
                    "es un actor que pide 1 CPU lógica (`ray start --num-cpus=N` con N ≥ pasos, o "
                    "`StepResources(cpus=…)`). Si no, mira el registro de arriba por si un paso está atascado, y "
                    "relanza con un `timeout_s` mayor si el trabajo es así de largo."
                )
            if failure:
                return failure
            child.relay_log()
            time.sleep(poll_s)
        if child.finished:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.proc.wait(60)  # its Ray driver disconnects; Ray then ends the job's actors
        return None
    finally:  # also on Ctrl-C: never leave the driver or its actors running
        child.relay_log()  # what it logged until now (not the noise of its end)
        child.end()
        child.reap_actors(name)


def _importable(pipeline) -> None:
    """Make the classes of the pipeline's steps and LLMs importable by the module names they record.

    Resuming from the cache (``use_cache=True``) rebuilds the cached pipeline from its YAML, which
    names each class by module and name; a notebook's classes live in its kernel's ``__main__``
    (a test's in a module of its own), not in this process, which got them pickled by value.
    """
    from ray import cloudpickle

    for name in pipeline.dag:
        step = pipeline.dag.get_step(name)["step"]
        for obj in (step, getattr(step, "llm", None)):
            cls = type(obj)
            if obj is None or cls.__module__.startswith("distilabel."):
                continue
            try:
                module = importlib.import_module(cls.__module__)
            except ImportError:
                module = sys.modules.setdefault(cls.__module__, types.ModuleType(cls.__module__))
                # still sent to Ray's workers by value: they cannot import it either
                cloudpickle.register_pickle_by_value(module)
            if not hasattr(module, cls.__name__):
                setattr(module, cls.__name__, cls)


def _run_child(folder: Path) -> int:
    """The child's side: join the cluster, run the pipeline, pickle its ``Distiset`` (or its exception)."""
    import traceback

    import ray
    from ray import cloudpickle

    parent = os.getppid()

    def end_with_parent() -> None:  # a watchdog killed outright (kill -9, a dead kernel) takes its driver along
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=end_with_parent, daemon=True).start()
    job = cloudpickle.loads((folder / "job.pkl").read_bytes())
    connect(job["address"], namespace=job["namespace"], logging_level="ERROR")
    (folder / "job_id").write_text(ray.get_runtime_context().get_job_id())
    pipeline = job["pipeline"]
    pipeline._ray_head_node_url = None  # joined above: distilabel must not ray.init again
    _importable(pipeline)
    try:
        outcome = ("ok", pipeline.run(**job["run_kwargs"]))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        outcome = ("error", exc, traceback.format_exc())
    try:
        blob = _dumps(outcome)
    except Exception:  # noqa: BLE001 - an exception that does not pickle travels as text
        blob = _dumps(("error", RuntimeError(str(outcome[1])), outcome[-1] if outcome[0] == "error" else ""))
    partial = folder / "result.pkl.partial"
    partial.write_bytes(blob)
    partial.rename(folder / "result.pkl")
    return 0


if __name__ == "__main__":
    sys.exit(_run_child(Path(sys.argv[1])))
