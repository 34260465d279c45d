"""The translation engine: chunks, cache, batches, retries, quarantine, report, merge.

Usage: :mod:`utils.translate`.  How one chunk is translated:

1. every row is validated; malformed rows go to quarantine with their reason;
2. every turn is split into literals and sentences (:mod:`utils.translate.segments`);
3. identical sentences are translated once: the cache (SQLite) answers repeats, the rest
   are sorted by length and sent in batches of ``backend.batch_size``;
4. a failing batch is retried with exponential backoff and jitter
   (:func:`utils.core.retry.retry_call`); if it keeps failing it is split in halves until the
   sentence that fails is isolated, and only the rows that need it are quarantined;
   several isolated failures in a row mean the backend is down: the run stops with
   :class:`BackendUnavailableError`, losing nothing already committed;
5. a translation that lost a protected span is redone piece by piece;
6. rows are rebuilt, checked (:mod:`utils.translate.quality`) and committed atomically.

A chunk where a sentence failed only *transiently* (timeouts, 429/5xx, dropped
connections, retries exhausted) is not committed: the run goes on with the next chunk and
the next run translates it again (its other sentences come from the cache).  Only after
``max_transient_deferrals`` runs in a row hit the same failure are those rows quarantined
for good.  Malformed rows and inputs the backend rejects (permanent errors) are
quarantined at once.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from utils.core.retry import RetryPolicy, is_transient, retry_call
from utils.translate.backends import Backend
from utils.translate.quality import QAConfig, check_rows, merge_summaries, summarize
from utils.translate.records import (
    TranslateError,
    ValidRow,
    check_usable,
    file_sha256,
    load_rows,
    quarantine_entry,
    translated_row,
    validate_row,
)
from utils.translate.segments import (
    DEFAULT_RULES,
    ProtectionRules,
    Segment,
    Template,
    clean_output,
    has_letters,
    segment_text,
    strip_added_markup,
    verify_translation,
)
from utils.translate.store import (
    ChunkStore,
    RunIdentity,
    Shard,
    TranslationCache,
    atomic_write_json,
    atomic_writer,
    jsonl_bytes,
    load_manifest,
    read_jsonl,
)

log = logging.getLogger("utils.translate")

DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay=0.5, max_delay=30.0)


class BackendUnavailableError(TranslateError):
    """The backend failed on several sentences in a row: it is down, not the data."""


@dataclass(frozen=True)
class Failure:
    """A sentence the backend could not translate, and why."""

    reason: str
    transient: bool = False  # retries exhausted on a failure that may pass (worth another run)


# --------------------------------------------------------------------------- sentences


class SegmentTranslator:
    """Translate sentences once each: cache, length-sorted batches, retries, bisection.

    Args:
        backend: the model or endpoint.
        cache: the persistent cache (``None``: an in-memory dict only).
        retry: retry policy of each backend call.
        max_consecutive_failures: isolated failures in a row before giving up on the backend.
        sleep: injectable for tests.
    """

    def __init__(
        self,
        backend: Backend,
        cache: TranslationCache | None = None,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_consecutive_failures: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.memory: dict[str, str] = {}
        self.retry = retry
        self.max_consecutive_failures = max_consecutive_failures
        self.sleep = sleep
        self.consecutive_failures = 0
        self.stats: Counter[str] = Counter()

    def translate(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None
    ) -> dict[str, str | Failure]:
        """Map each distinct text to its raw translation (or a :class:`Failure`)."""
        unique = list(dict.fromkeys(texts))
        results: dict[str, str | Failure] = {t: self.memory[t] for t in unique if t in self.memory}
        if self.cache is not None:
            results.update(self.cache.get_many(t for t in unique if t not in results))
        todo = sorted((t for t in unique if t not in results), key=len)
        self.stats["segments"] += len(texts)
        self.stats["sent"] += len(todo)
        size = max(1, self.backend.batch_size)
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            began = time.perf_counter()
            outputs = self._batch(batch)
            self.stats["backend_ms"] += int((time.perf_counter() - began) * 1000)
            done = [(s, o) for s, o in outputs.items() if isinstance(o, str)]
            self.memory.update(done)
            if self.cache is not None and done:
                self.cache.put_many(done)
            results.update(outputs)
            if on_batch is not None:
                on_batch(len(batch))
        return results

    def _call(self, batch: list[str]) -> list[str]:
        outputs = self.backend.translate(batch)
        if len(outputs) != len(batch) or not all(isinstance(o, str) for o in outputs):
            raise RuntimeError(f"backend returned {len(outputs)} outputs for {len(batch)} inputs (or non-strings)")
        return list(outputs)

    def _on_retry(self, attempt: int, exc: BaseException, delay: float) -> None:
        self.stats["retries"] += 1
        log.info(
            "falló una llamada al backend (%s: %s); reintento %d en %.2f s",
            type(exc).__name__,
            exc,
            attempt + 1,
            delay,
        )

    def _batch(self, batch: list[str]) -> dict[str, str | Failure]:
        try:
            outputs = retry_call(lambda: self._call(batch), self.retry, on_retry=self._on_retry, sleep=self.sleep)
        except Exception as exc:
            if len(batch) > 1:  # find the sentence that fails; the others still get translated
                self.stats["bisections"] += 1
                middle = len(batch) // 2
                return {**self._batch(batch[:middle]), **self._batch(batch[middle:])}
            self.consecutive_failures += 1
            kind = "transitorio, reintentos agotados" if is_transient(exc) else "permanente"
            reason = f"{type(exc).__name__} ({kind}): {str(exc)[:200]}"
            log.warning("una frase no se pudo traducir: %s", reason)
            if self.consecutive_failures >= self.max_consecutive_failures:
                raise BackendUnavailableError(
                    f"El backend falló en {self.consecutive_failures} frases seguidas (la última: {reason}). "
                    "Parece caído o mal configurado. Los bloques terminados están a salvo: arregla el backend "
                    "y vuelve a ejecutar el mismo comando para reanudar."
                ) from exc
            self.stats["failed"] += 1
            return {batch[0]: Failure(reason, transient=is_transient(exc))}
        self.consecutive_failures = 0
        return dict(zip(batch, outputs, strict=True))


_EDGES = re.compile(r"^([\W_]*)(.*?)([\W_]*)$", re.DOTALL)


def _split_edges(text: str) -> tuple[str, str, str]:
    """(leading, core, trailing): whitespace, punctuation and symbols at the edges stay literal.

    In a piece such as ``" the oranges cost $"`` the ``$`` belongs to the number that
    follows; translating only ``"the oranges cost"`` keeps it in place.
    """
    match = _EDGES.match(text)
    assert match is not None  # the pattern matches any string
    return match.group(1), match.group(2), match.group(3)


def resolve_segments(
    segments: Sequence[Segment], translator: SegmentTranslator, stats: Counter[str]
) -> dict[Segment, str | Failure]:
    """Final text of each segment: whole translation if it keeps every protected span,
    else the pieces between the spans translated one by one (spans kept verbatim)."""
    first = translator.translate([s.text for s in segments])
    final: dict[Segment, str | Failure] = {}
    redo: list[Segment] = []
    for segment in dict.fromkeys(segments):
        output = first[segment.text]
        if isinstance(output, Failure):
            final[segment] = output
            continue
        cleaned = clean_output(output)
        problem = verify_translation(segment, cleaned)
        if problem is None:
            final[segment] = cleaned
        elif segment.protected:
            redo.append(segment)
        else:
            final[segment] = strip_added_markup(cleaned) or segment.text
            if final[segment] == segment.text:
                stats["untranslated"] += 1
    if not redo:
        return final
    stats["fallbacks"] += len(redo)
    cores = [_split_edges(piece)[1] for s in redo for ok, piece in s.parts if ok and has_letters(piece)]
    second = translator.translate(cores)
    for segment in redo:
        pieces: list[str] = []
        failure: Failure | None = None
        for ok, piece in segment.parts:
            lead, core, trail = _split_edges(piece)
            if not ok or not has_letters(core):
                pieces.append(piece)
                continue
            output = second[core]
            if isinstance(output, Failure):
                failure = output
                break
            text = strip_added_markup(output)
            if not text:
                stats["untranslated"] += 1
            pieces.append(lead + (text or core) + trail)
        final[segment] = failure if failure is not None else "".join(pieces)
    return final


# --------------------------------------------------------------------------- chunks


@dataclass
class ChunkOutput:
    rows: list[dict[str, Any]]
    quarantined: list[dict[str, Any]]
    stats: dict[str, Any]
    qa: dict[str, Any]
    transient_failures: int = 0  # rows in ``quarantined`` only because of transient backend failures
    #: (source, translation) pairs translated for this chunk by a worker elsewhere (Ray), for the driver's cache.
    translations: list[tuple[str, str]] | None = None


def translate_chunk(
    objects: Sequence[Any],
    first_index: int,
    translator: SegmentTranslator,
    *,
    rules: ProtectionRules = DEFAULT_RULES,
    qa_config: QAConfig = QAConfig(),
    on_batch: Callable[[int], None] | None = None,
) -> ChunkOutput:
    """Validate, translate, rebuild and check the rows of one chunk (nothing is written)."""
    began = time.perf_counter()
    before = Counter(translator.stats)
    stats: Counter[str] = Counter()
    quarantined: list[dict[str, Any]] = []
    valid: list[ValidRow] = []
    for offset, obj in enumerate(objects):
        parsed = validate_row(obj, first_index + offset)
        if isinstance(parsed, str):
            quarantined.append(quarantine_entry(obj, first_index + offset, parsed))
        else:
            valid.append(parsed)
    templates: dict[int, list[Template]] = {
        row.index: [segment_text(turn.value, rules) for turn in row.turns] for row in valid
    }
    segments = [s for tpls in templates.values() for tpl in tpls for s in tpl.segments]
    final = resolve_segments(segments, translator, stats) if segments else {}
    rows: list[dict[str, Any]] = []
    transient_rows = 0
    for row in valid:
        values: list[str] = []
        failure: Failure | None = None
        for template in templates[row.index]:
            outputs = [final[s] for s in template.segments]
            failure = next((o for o in outputs if isinstance(o, Failure)), None)
            if failure is not None:
                break
            values.append(template.render([o for o in outputs if isinstance(o, str)]))
        if failure is not None:
            transient_rows += failure.transient
            quarantined.append(quarantine_entry(row.raw, row.index, f"la traducción falló: {failure.reason}"))
        else:
            rows.append(translated_row(row, values))
    quarantined.sort(key=lambda q: q["row_index"])
    delta = Counter(translator.stats)
    delta.subtract(before)
    seconds = time.perf_counter() - began
    chunk_stats = {
        "segments": len(segments),  # sentences of this chunk's turns
        "requests": delta["segments"],  # sentences + pieces of sentences redone around protected spans
        "segments_sent": delta["sent"],  # requests that reached the backend (not cached, not repeated)
        "cache_hits": delta["segments"] - delta["sent"],
        "fallbacks": stats["fallbacks"],
        "untranslated": stats["untranslated"],
        "retries": delta["retries"],
        "bisections": delta["bisections"],
        "failed_segments": delta["failed"],
        "backend_s": round(delta["backend_ms"] / 1000, 3),
        "seconds": round(seconds, 3),
    }
    return ChunkOutput(rows, quarantined, chunk_stats, summarize(check_rows(rows, qa_config)), transient_rows)


# --------------------------------------------------------------------------- runs


class ChunkWorkers(Protocol):
    """Translates chunks outside this process (see :mod:`utils.translate.ray_runner`)."""

    #: The backend's name, as :attr:`Backend.name` (the same for every worker).
    name: str

    def map_chunks(
        self, jobs: Sequence[tuple[int, Sequence[Any], int]], *, rules: ProtectionRules, qa_config: QAConfig
    ) -> Iterator[tuple[int, ChunkOutput]]:
        """Translate each ``(chunk, rows, first_index)``; yield ``(chunk, output)`` as they finish."""
        ...


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="fila", desc="traduciendo", disable=not enabled, smoothing=0.1)


def run_translation(
    input_path: Path | str,
    out_dir: Path | str,
    backend: Backend,
    *,
    chunk_size: int = 500,
    shard: Shard | str = Shard(),
    limit: int | None = None,
    rules: ProtectionRules = DEFAULT_RULES,
    qa_config: QAConfig = QAConfig(),
    retry: RetryPolicy = DEFAULT_RETRY,
    max_consecutive_failures: int = 5,
    max_transient_deferrals: int = 3,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    rows: list[Any] | None = None,
    workers: ChunkWorkers | None = None,
) -> dict[str, Any]:
    """Translate ``input_path`` into ``out_dir``, resuming whatever is already there.

    Args:
        input_path: LLaVA ``.json`` (array) or ``.jsonl`` file.
        out_dir: output folder (chunks, commit log, cache, quarantine, report).
        backend: see :mod:`utils.translate.backends`.
        chunk_size: rows per chunk file (the unit of resume).
        shard: ``Shard(i, n)`` or ``"i/n"``: translate only chunks ``k`` with ``k % n == i``.
        limit: only the first ``limit`` rows of the input (``None``/0: all).
        rules / qa_config / retry: protection, quality and retry settings.
        max_consecutive_failures: isolated failures in a row before stopping.
        max_transient_deferrals: runs that may leave a chunk for later because of transient
            backend failures; the next one quarantines those rows for good.
        progress: show a progress bar with rows/s, segments/s and ETA.
        rows: ``load_rows(input_path, limit)`` if the caller already read them (the CLI
            reads the input before loading the model, to report bad input quickly).
        workers: translate the chunks elsewhere (e.g. :class:`utils.translate.ray_runner.RayWorkers`,
            one model per Ray actor) instead of with ``backend`` in this process.  Only the
            translation moves: commits, deferrals, the cache file and the report stay here,
            keyed by chunk, so a chunk translated twice is still committed once.  ``backend``
            is then unused (``None`` is fine).

    Returns:
        The report (also saved as ``out_dir/report.json``).  ``complete`` is false when
        chunks were left for the next run (``chunks_deferred``): run the same call again.

    Raises:
        TranslateError: bad input, or ``out_dir`` holds a run with other settings.
        BackendUnavailableError: the backend is down (re-run the same call to resume).
    """
    if chunk_size < 1:
        raise TranslateError(f"chunk_size debe ser al menos 1 (recibido: {chunk_size}).")
    started = time.perf_counter()
    input_path, out_dir = Path(input_path), Path(out_dir)
    shard = Shard.parse(shard) if isinstance(shard, str) else shard
    objects = rows if rows is not None else load_rows(input_path, limit)
    check_usable(objects, input_path)
    identity = RunIdentity(
        input_sha256=file_sha256(input_path),
        input_name=input_path.name,
        total_rows=len(objects),
        chunk_size=chunk_size,
        shard=shard,
        backend=(workers or backend).name,
    )
    store = ChunkStore(out_dir, identity)
    try:
        cache = TranslationCache(out_dir / "cache.sqlite", identity.backend)
    except BaseException:
        store.close()
        raise
    resumed = sum(1 for k in identity.my_chunks() if store.is_done(k))
    pending = store.pending()
    if resumed:
        log.info("reanudando: %d bloque(s) ya hechos, %d por hacer", resumed, len(pending))
    translator = None
    if workers is None:
        translator = SegmentTranslator(
            backend, cache, retry=retry, max_consecutive_failures=max_consecutive_failures, sleep=sleep
        )
    my_rows = sum(identity.chunk_rows(k)[1] - identity.chunk_rows(k)[0] for k in identity.my_chunks())
    done_rows = sum(r.rows[1] - r.rows[0] for r in store.records.values())
    bar = _progress_bar(my_rows, done_rows, progress)
    seg_done = 0
    seg_started = time.perf_counter()

    def on_batch(count: int) -> None:
        nonlocal seg_done
        seg_done += count
        rate = seg_done / max(time.perf_counter() - seg_started, 1e-9)
        bar.set_postfix(seg_s=f"{rate:.1f}", cache=f"{len(translator.memory) if translator else '-'}", refresh=True)

    def translated() -> Iterator[tuple[int, ChunkOutput]]:
        if workers is not None:
            jobs = [(k, objects[slice(*identity.chunk_rows(k))], identity.chunk_rows(k)[0]) for k in pending]
            yield from workers.map_chunks(jobs, rules=rules, qa_config=qa_config)
            return
        for chunk in pending:
            start, end = identity.chunk_rows(chunk)
            yield (
                chunk,
                translate_chunk(
                    objects[start:end], start, translator, rules=rules, qa_config=qa_config, on_batch=on_batch
                ),
            )

    this_run = 0
    deferred: list[int] = []
    handled: set[int] = set()
    failed: BaseException | None = None
    try:
        for chunk, output in translated():
            start, end = identity.chunk_rows(chunk)
            if chunk in handled or store.is_done(chunk):  # translated twice (a worker retried by Ray): once
                continue
            handled.add(chunk)
            if output.translations:
                cache.put_many(output.translations)
            if output.transient_failures and store.deferrals.get(chunk, 0) < max_transient_deferrals:
                runs = store.defer(chunk, f"{output.transient_failures} fila(s) con fallos transitorios del backend")
                deferred.append(chunk)
                log.warning(
                    "bloque %d: %d fila(s) fallaron por errores transitorios del backend; el bloque no se guarda "
                    "y se traducirá de nuevo en la próxima ejecución (%d de %d)",
                    chunk,
                    output.transient_failures,
                    runs,
                    max_transient_deferrals,
                )
                continue
            store.commit(chunk, output.rows, output.quarantined, output.stats, output.qa)
            this_run += 1
            bar.update(end - start)
    except BaseException as exc:
        failed = exc
        raise
    finally:
        bar.close()
        cache.close()
        try:  # the report lists exactly the chunks of the commit log
            report = build_report(
                store, started=started, this_run=this_run, resumed=resumed, input_path=input_path, deferred=deferred
            )
            write_quarantine(out_dir / "quarantine.jsonl", store)
            atomic_write_json(out_dir / "report.json", report)
        except OSError as exc:
            if failed is None:
                raise
            log.warning("no se pudo escribir el informe en %s: %s", out_dir, exc)  # e.g. the disk is still full
        finally:
            store.close()
    if deferred:
        log.warning(
            "%d bloque(s) quedan pendientes por fallos transitorios del backend (%s): vuelve a ejecutar el "
            "mismo comando para reanudar",
            len(deferred),
            _short(deferred),
        )
    return report


def write_quarantine(path: Path, store: ChunkStore) -> None:
    """Rebuild ``quarantine.jsonl`` from the committed chunks."""
    with atomic_writer(path) as handle:
        for entry in store.iter_quarantine():
            handle.write(jsonl_bytes([entry]))


def build_report(
    store: ChunkStore,
    *,
    started: float,
    this_run: int,
    resumed: int,
    input_path: Path,
    deferred: Sequence[int] = (),
) -> dict[str, Any]:
    """Totals over every committed chunk of ``store`` plus this invocation's timing."""
    identity = store.identity
    records = list(store.records.values())
    total = Counter()
    for record in records:
        total.update({k: v for k, v in record.stats.items() if isinstance(v, (int, float))})
    rows_in = sum(identity.chunk_rows(k)[1] - identity.chunk_rows(k)[0] for k in identity.my_chunks())
    segments = int(total["segments"])
    requests = int(total["requests"])
    return {
        "input": str(input_path),
        "out_dir": str(store.out_dir),
        "shard": str(identity.shard),
        "backend": identity.backend,
        "complete": not store.pending(),
        "chunks_total": len(identity.my_chunks()),
        "chunks_done": len(records),
        "chunks_resumed": resumed,
        "chunks_this_run": this_run,
        "chunks_deferred": list(deferred),
        "rows_in": rows_in,
        "rows_translated": sum(r.translated for r in records),
        "rows_quarantined": sum(r.quarantined for r in records),
        "segments": segments,
        "requests": requests,
        "segments_sent": int(total["segments_sent"]),
        "cache_hit_rate": round(total["cache_hits"] / requests, 4) if requests else 0.0,
        "fallbacks": int(total["fallbacks"]),
        "untranslated_segments": int(total["untranslated"]),
        "retries": int(total["retries"]),
        "failed_segments": int(total["failed_segments"]),
        "translate_s": round(total["seconds"], 2),
        "backend_s": round(total["backend_s"], 2),
        "segments_per_s": round(segments / total["seconds"], 2) if total["seconds"] else None,
        "wall_s": round(time.perf_counter() - started, 2),
        "qa": merge_summaries(store.qa(r) for r in records),
    }


# --------------------------------------------------------------------------- merge


def result_paths(result_path: Path | str) -> tuple[Path, Path]:
    """``RESULT.jsonl`` and its companion ``RESULT.quarantine.jsonl``."""
    result_path = Path(result_path)
    return result_path, result_path.with_name(result_path.name.removesuffix(".jsonl") + ".quarantine.jsonl")


def check_merge_target(result_path: Path | str, out_dirs: Sequence[Path | str], *, force: bool = False) -> None:
    """Refuse a merge result that would destroy data.

    ``RESULT`` (and its ``.quarantine.jsonl``) must not lie inside an output folder nor be
    the run's input file, and must not exist already unless ``force``.

    Raises:
        TranslateError: saying which path and what to pass instead.
    """
    folders = [Path(d).resolve() for d in out_dirs]
    inputs = set()
    for folder in folders:
        try:
            inputs.add(load_manifest(folder)["run"]["input_sha256"])
        except TranslateError:
            pass  # reported by the merge itself
    for path in result_paths(result_path):
        resolved = path.resolve()
        for folder in folders:
            if resolved == folder or folder in resolved.parents:
                raise TranslateError(
                    f"El resultado {path} está dentro de la carpeta de salida {folder}: escribirlo ahí "
                    "estropearía esa carpeta (su manifiesto, sus bloques). Elige un fichero fuera de las "
                    "carpetas que fusionas, p. ej. llava_es.jsonl."
                )
        if path.is_dir():
            raise TranslateError(
                f"{path} es una carpeta; el resultado debe ser un fichero, p. ej. {path}/llava_es.jsonl."
            )
        if not path.exists():
            continue
        if path.is_file() and file_sha256(path) in inputs:
            raise TranslateError(
                f"{path} es el fichero de entrada de la traducción: la fusión lo sobrescribiría. "
                "Elige otro nombre para el resultado, p. ej. llava_es.jsonl."
            )
        if not force:
            raise TranslateError(
                f"{path} ya existe y la fusión lo sobrescribiría. Elige otro nombre, bórralo tú, o pasa "
                "--force (force=True en Python) si de verdad quieres reemplazarlo."
            )


def merge_outputs(out_dirs: Sequence[Path | str], result_path: Path | str, *, force: bool = False) -> dict[str, Any]:
    """Join the chunks of one or more output folders (shards) into one JSON Lines file.

    Checks that the folders belong to the same run (same input, chunk size, backend and
    number of shards), that every chunk is present exactly once and intact, and that every
    input row is accounted for exactly once (translated or quarantined).  Writes
    ``RESULT.jsonl`` and ``RESULT.quarantine.jsonl`` atomically, and refuses to overwrite
    an existing file (unless ``force``), the run's input or anything inside an output folder.

    Raises:
        TranslateError: naming the missing or duplicated chunks and what to run.
    """
    if not out_dirs:
        raise TranslateError("merge necesita al menos una carpeta de salida.")
    stores = [ChunkStore.open(d) for d in out_dirs]
    check_merge_target(result_path, out_dirs, force=force)
    first = stores[0].identity
    for store in stores[1:]:
        other = store.identity
        for key in ("input_sha256", "total_rows", "chunk_size", "backend"):
            if getattr(other, key) != getattr(first, key):
                raise TranslateError(
                    f"{store.out_dir} y {stores[0].out_dir} son de ejecuciones distintas (difiere {key}); "
                    "fusiona solo las partes de una misma ejecución."
                )
        if other.shard.count != first.shard.count:
            raise TranslateError(
                f"{store.out_dir} es la parte {other.shard} pero {stores[0].out_dir} es la parte {first.shard}: "
                "todas las partes deben dividir la entrada en el mismo número de trozos."
            )
    owners: dict[int, list[ChunkStore]] = {}
    for store in stores:
        for chunk in store.records:
            owners.setdefault(chunk, []).append(store)
    duplicated = {k: [str(s.out_dir) for s in v] for k, v in owners.items() if len(v) > 1}
    if duplicated:
        raise TranslateError(
            f"Hay bloques en más de una carpeta: {duplicated}. Pasa la carpeta de cada parte una sola vez."
        )
    missing = [k for k in range(first.chunks_total) if k not in owners]
    if missing:
        shards = sorted({str(Shard(k % first.shard.count, first.shard.count)) for k in missing})
        raise TranslateError(
            f"Faltan {len(missing)} de {first.chunks_total} bloques ({_short(missing)}). Vuelve a ejecutar "
            f"la(s) parte(s) {', '.join(shards)} con el mismo comando (se reanudan) y pasa sus carpetas a merge."
        )
    result_path, quarantine_path = result_paths(result_path)
    seen: Counter[int] = Counter()
    rows = quarantined = 0
    with atomic_writer(result_path) as out, atomic_writer(quarantine_path) as qout:
        for chunk in range(first.chunks_total):
            record = owners[chunk][0].records[chunk]
            store = owners[chunk][0]
            for row in read_jsonl(store.out_dir / record.file):
                seen[row["row_index"]] += 1
                rows += 1
                out.write(jsonl_bytes([row]))
            for entry in read_jsonl(store.out_dir / record.quarantine_file):
                seen[entry["row_index"]] += 1
                quarantined += 1
                qout.write(jsonl_bytes([entry]))
        twice = sorted(i for i, n in seen.items() if n > 1)
        absent = sorted(set(range(first.total_rows)) - set(seen))
        if twice or absent:  # raising here leaves the previous result files untouched
            raise TranslateError(
                f"La comprobación de cobertura falló: filas repetidas {_short(twice)}, filas que faltan "
                f"{_short(absent)}. Los bloques no coinciden con el registro de la carpeta; borra los bloques "
                "afectados y reanuda."
            )
    return {
        "result": str(result_path),
        "quarantine": str(quarantine_path),
        "rows_total": first.total_rows,
        "rows_translated": rows,
        "rows_quarantined": quarantined,
        "chunks": first.chunks_total,
        "folders": [str(s.out_dir) for s in stores],
    }


def _short(items: Sequence[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return f"[{shown}{', …' if len(items) > limit else ''}]" if items else "[]"
