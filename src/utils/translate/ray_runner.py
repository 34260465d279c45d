"""The translation engine's chunks on a Ray cluster: one model per actor, commits in the driver.

.. code-block:: python

    from functools import partial
    from utils.services import ray_cluster
    from utils.translate import make_backend, run_translation
    from utils.translate.ray_runner import RayWorkers

    with ray_cluster.cluster("local") as address:            # or "HOST:PORT" of a running cluster
        with RayWorkers(address, partial(make_backend, "seq2seq", threads=1), workers=2) as workers:
            report = run_translation("llava.json", "out/", None, workers=workers)

Each :class:`ChunkWorker` actor loads its backend once and runs the engine's
:func:`~utils.translate.engine.translate_chunk` on whole chunks; the driver
(:func:`~utils.translate.engine.run_translation`) commits by chunk number, so a chunk a
restarted actor translates twice is committed once (README §Cuaderno 01, «Ray», and
§Robustez).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

from utils.core.retry import RetryPolicy
from utils.translate.backends import Backend
from utils.translate.engine import DEFAULT_RETRY, ChunkOutput, SegmentTranslator, translate_chunk
from utils.translate.quality import QAConfig
from utils.translate.records import TranslateError
from utils.translate.segments import ProtectionRules

log = logging.getLogger("utils.translate")

#: A killed actor is restarted this many times, and its chunk retried as many, before the run stops.
MAX_RESTARTS = 3


def build_backend(profile: str, kind: str | None, **kwargs: Any) -> Backend:
    """:func:`~utils.translate.backends.make_backend` inside a worker, with the driver's profile.

    In the mini profile the worker goes offline first, as the driver does.
    """
    from utils.core.settings import get_settings
    from utils.translate.backends import make_backend

    settings = get_settings(profile)
    if settings.profile == "mini":
        from utils.core.notebook import go_offline

        go_offline()
    return make_backend(kind, settings=settings, **kwargs)


class ChunkWorker:
    """One backend (one model) in one Ray actor; translates whole chunks.

    Ray wraps this class with ``ray.remote`` in :class:`RayWorkers`; it is a plain class so
    that it can be tested (and read) without a cluster.
    """

    def __init__(self, backend_factory: Callable[[], Backend], retry: RetryPolicy, max_consecutive_failures: int):
        self.backend = backend_factory()
        self.translator = SegmentTranslator(
            self.backend, None, retry=retry, max_consecutive_failures=max_consecutive_failures
        )

    def describe(self) -> tuple[str, int]:
        """The backend's name (part of the run's identity) and the worker's process id."""
        import os

        return self.backend.name, os.getpid()

    def translate(
        self, chunk: int, objects: Sequence[Any], first_index: int, rules: ProtectionRules, qa_config: QAConfig
    ) -> tuple[int, ChunkOutput]:
        known = len(self.translator.memory)
        output = translate_chunk(objects, first_index, self.translator, rules=rules, qa_config=qa_config)
        output.translations = list(self.translator.memory.items())[known:]  # new this chunk, for the driver's cache
        return chunk, output


class RayWorkers:
    """A pool of :class:`ChunkWorker` actors on the cluster at ``address`` (a ``with`` block).

    Args:
        address: ``HOST:PORT`` of the cluster (see :func:`utils.services.ray_cluster.cluster`).
        backend_factory: builds the backend inside each actor (picklable: a function or a
            ``functools.partial`` of :func:`~utils.translate.backends.make_backend`).
        workers: actors (models); default: one per GPU of the cluster, else one per CPU.
        num_gpus: GPUs per actor; default 1 when the cluster has GPUs, else 0.
        num_cpus: CPUs per actor (Ray's scheduling unit; give the backend as many threads).
        in_flight: chunks queued per actor (2: the next chunk is ready when one finishes).
        retry / max_consecutive_failures: as in :func:`~utils.translate.engine.run_translation`.

    Raises:
        TranslateError: the actors do not agree on the backend (different models or
            precisions on different machines), or there is no room for one actor.
    """

    def __init__(
        self,
        address: str,
        backend_factory: Callable[[], Backend],
        *,
        workers: int | None = None,
        num_gpus: float | None = None,
        num_cpus: float = 1,
        in_flight: int = 2,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_consecutive_failures: int = 5,
    ) -> None:
        import ray

        from utils.services import ray_cluster

        ray_cluster.connect(address)
        try:
            resources = ray.cluster_resources()
            gpus = int(resources.get("GPU", 0))
            if num_gpus is None:
                num_gpus = 1 if gpus else 0
            if workers is None:
                workers = gpus if num_gpus and gpus else max(1, int(resources.get("CPU", 1) // num_cpus))
            if workers < 1:
                raise TranslateError(f"--ray-workers debe ser al menos 1 (recibido: {workers}).")
            actor = ray.remote(
                num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
            )(ChunkWorker)
            self.actors = [actor.remote(backend_factory, retry, max_consecutive_failures) for _ in range(workers)]
            described = ray.get([a.describe.remote() for a in self.actors])
        except BaseException:
            self.close()
            raise
        names = sorted({name for name, _ in described})
        if len(names) != 1:
            self.close()
            raise TranslateError(
                f"Los trabajadores de Ray no cargaron el mismo modelo: {names}. Instala la misma versión del "
                "modelo (y la misma precisión) en todas las máquinas del clúster."
            )
        self.name = names[0]
        self.pids = [pid for _, pid in described]
        self.in_flight = max(1, in_flight)

    def map_chunks(
        self, jobs: Sequence[tuple[int, Sequence[Any], int]], *, rules: ProtectionRules, qa_config: QAConfig
    ) -> Iterator[tuple[int, ChunkOutput]]:
        """Send the chunks to the actors (``in_flight`` each); yield results as they finish."""
        import ray

        queue = list(jobs)[::-1]
        running: dict[Any, Any] = {}  # future -> actor

        def submit(actor: Any) -> None:
            if queue:
                chunk, objects, first = queue.pop()
                running[actor.translate.remote(chunk, objects, first, rules, qa_config)] = actor

        for _ in range(self.in_flight):
            for actor in self.actors:
                submit(actor)
        try:
            while running:
                [done], _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(done)
                submit(actor)
                try:
                    result = ray.get(done)
                except ray.exceptions.RayTaskError as exc:  # the engine's own error, raised in the actor
                    cause = exc.cause
                    raise (cause if isinstance(cause, Exception) else exc) from None
                except ray.exceptions.RayActorError as exc:
                    raise TranslateError(
                        f"Un trabajador de Ray murió {MAX_RESTARTS + 1} veces seguidas ({exc.__class__.__name__}). "
                        "Los bloques terminados están a salvo: mira la memoria y los logs del clúster y vuelve a "
                        "ejecutar el mismo comando para reanudar."
                    ) from None
                yield result
        finally:
            for future in running:  # queued chunks of a stopped run (the actors are killed in close())
                with contextlib.suppress(Exception):
                    ray.cancel(future)

    def close(self) -> None:
        """Stop the actors (their models) and disconnect this process from the cluster."""
        import ray

        for actor in getattr(self, "actors", []):
            ray.kill(actor)
        self.actors = []
        ray.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
