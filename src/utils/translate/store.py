"""Chunk files, the commit log and the translation cache of one output folder.

Layout of ``OUT_DIR``::

    manifest.json             the run's identity (written once, when the folder is created)
    commits.jsonl             the commit log: one line per finished chunk, appended
    chunks/chunk-000012.jsonl        translated rows of chunk 12
    chunks/chunk-000012.quarantine.jsonl  rows of chunk 12 set aside, with reasons
    chunks/chunk-000012.qa.json      quality checks of chunk 12 (flag counts, flagged rows)
    deferred.jsonl            chunks left for the next run after transient backend failures
    cache.sqlite              source sentence → translation, per backend
    quarantine.jsonl          all quarantined rows (rebuilt at the end of each run)
    report.json               the run report (rebuilt at the end of each run)

Every chunk file is written to a temporary name, flushed to disk and renamed into place,
so a reader never sees half a file.  A chunk counts as finished only once the commit log
holds a complete line for it with the SHA-256 of its files; a ``kill -9`` between writing
the chunk and appending that line just means the chunk is translated again and
overwritten.  A line cut short by a crash or a full disk is ignored (and cut off by the
next writer).  Hence a crash loses at most the chunk in flight and never leaves a
duplicate or corrupt chunk.  Each commit appends one short line: its cost does not grow
with the number of chunks already done.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from utils.translate.records import TranslateError

log = logging.getLogger("utils.translate")
MANIFEST = "manifest.json"
COMMIT_LOG = "commits.jsonl"
DEFERRED_LOG = "deferred.jsonl"
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)  # format 1: every chunk inside manifest.json (converted on resume)


# --------------------------------------------------------------------------- interruptions

_critical_depth = 0
_pending_interrupt: BaseException | None = None


@contextmanager
def critical_section() -> Iterator[None]:
    """Delay interruptions delivered through :func:`interrupt` until the block ends.

    A commit (one log line plus the in-memory record) then happens entirely or not at all,
    so the report written after Ctrl-C lists exactly the chunks of the commit log.
    """
    global _critical_depth, _pending_interrupt
    _critical_depth += 1
    try:
        yield
    except BaseException:
        _critical_depth -= 1
        if _critical_depth == 0:
            _pending_interrupt = None  # the block's own error stops the run already
        raise
    _critical_depth -= 1
    if _critical_depth == 0 and _pending_interrupt is not None:
        exc, _pending_interrupt = _pending_interrupt, None
        raise exc


def interrupt(exc: BaseException) -> None:
    """Raise ``exc`` now, or at the end of the current :func:`critical_section` (signal handlers)."""
    global _pending_interrupt
    if _critical_depth:
        _pending_interrupt = exc
        return
    raise exc


# --------------------------------------------------------------------------- atomic files


def fsync_dir(folder: Path) -> None:
    """Make the renames inside ``folder`` durable (some network/FUSE file systems cannot)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


@contextmanager
def atomic_writer(path: Path, *, sync_dir: bool = True) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``path``; on success flush, fsync and rename it into place.

    If the block raises (or the process dies), ``path`` keeps its previous content.
    ``sync_dir=False`` leaves the folder's fsync to the caller (one for several files).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    with atomic_writer(path, sync_dir=sync_dir) as handle:
        handle.write(data)


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """JSON Lines encoding (UTF-8, one object per line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as pretty JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSON Lines file.

    Lines end at ``\n`` only: U+2028, U+0085 and other characters that
    :meth:`str.splitlines` treats as line breaks may appear inside JSON strings.
    """
    text = path.read_bytes().decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _complete_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The entries of an append-only log and the byte length of its complete lines.

    A last line without its newline was cut short (crash, full disk): it does not count.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1
    entries = []
    for number, line in enumerate(data[:end].split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise TranslateError(
                f"La línea {number} de {path} está dañada (no es JSON). Ese registro solo se escribe "
                "añadiendo líneas completas: ¿se editó a mano? Borra esa línea y vuelve a ejecutar el "
                "mismo comando; los bloques que falten se traducirán de nuevo."
            ) from None
    return entries, end


def read_commit_log(out_dir: Path | str) -> list[dict[str, Any]]:
    """The complete entries of ``OUT_DIR/commits.jsonl``, oldest first."""
    return _complete_lines(Path(out_dir) / COMMIT_LOG)[0]


class AppendLog:
    """An append-only JSON Lines file: each entry is one ``write`` plus ``fsync``.

    Opening it cuts off a last line left incomplete by a crash; a failed append is undone,
    so a complete line always is a complete entry.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        created = not path.exists()
        _, end = _complete_lines(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if os.fstat(self._fd).st_size != end:
            os.ftruncate(self._fd, end)
        if created:
            fsync_dir(path.parent)

    def append(self, entry: dict[str, Any]) -> None:
        line = (json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        size = os.fstat(self._fd).st_size
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
            os.fsync(self._fd)
        except BaseException:
            try:
                os.ftruncate(self._fd, size)
            except OSError:
                pass  # the next writer cuts the incomplete line off
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


# --------------------------------------------------------------------------- run identity


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (0-based): chunk ``k`` belongs to shard ``k % count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise TranslateError(
                f"Parte no válida {self.index}/{self.count}: usa i/n con 0 ≤ i < n, p. ej. 0/4, 1/4, 2/4 y 3/4."
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``"i/n"``.

        Raises:
            TranslateError: when the text is not of that form or out of range.
        """
        try:
            index, count = (int(x) for x in text.split("/"))
        except ValueError:
            raise TranslateError(f"--shard {text!r} no tiene la forma i/n (p. ej. 0/4).") from None
        return cls(index, count)

    def owns(self, chunk: int) -> bool:
        return chunk % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class RunIdentity:
    """What must not change between a run and its resume (or between merged shards)."""

    input_sha256: str
    input_name: str
    total_rows: int  # rows of the input considered (after the limit)
    chunk_size: int
    shard: Shard
    backend: str

    @property
    def chunks_total(self) -> int:
        return -(-self.total_rows // self.chunk_size)  # ceil: the last partial chunk counts

    def chunk_rows(self, chunk: int) -> tuple[int, int]:
        """Row range ``[start, end)`` of ``chunk``."""
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.total_rows)

    def my_chunks(self) -> list[int]:
        return [k for k in range(self.chunks_total) if self.shard.owns(k)]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["shard"] = str(self.shard)
        return data


def _identity_from_json(data: dict[str, Any]) -> RunIdentity:
    return RunIdentity(
        input_sha256=data["input_sha256"],
        input_name=data["input_name"],
        total_rows=int(data["total_rows"]),
        chunk_size=int(data["chunk_size"]),
        shard=Shard.parse(data["shard"]),
        backend=data["backend"],
    )


def prepare_out_dir(out_dir: Path | str) -> Path:
    """Create ``out_dir`` (and ``chunks/``) and prove it is writable, or say why not.

    The command line calls this before loading the model, so that a wrong folder costs
    seconds, not minutes.

    Raises:
        TranslateError: the path is a file, lies under a file, or cannot be written to.
        OSError: ``ENOSPC``/``EDQUOT`` when the disk is full (the command line explains it).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TranslateError(
            f"La carpeta de salida {out_dir} ya existe y es un fichero, no una carpeta. Pasa otra ruta "
            "(p. ej. build/llava_es) o mueve ese fichero."
        )
    try:
        (out_dir / "chunks").mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out_dir, prefix=".write-test.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except (NotADirectoryError, FileExistsError):
        raise TranslateError(
            f"No se puede crear la carpeta de salida {out_dir}: una parte de la ruta es un fichero. Pasa otra ruta."
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise TranslateError(
            f"No se puede escribir en la carpeta de salida {out_dir} ({exc.strerror}): ¿es de solo lectura "
            "o de otro usuario? Pasa una carpeta en la que puedas escribir (p. ej. dentro de build/)."
        ) from None
    return out_dir


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class ChunkRecord:
    """The commit log entry of a finished chunk."""

    chunk: int
    rows: tuple[int, int]
    file: str
    sha256: str
    quarantine_file: str
    quarantine_sha256: str
    qa_file: str  # "" for chunks of a format-1 folder read without converting it
    qa_sha256: str
    translated: int
    quarantined: int
    stats: dict[str, Any]  # segments, seconds, cache hits, fallbacks, retries...

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rows"] = list(self.rows)
        return data

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> ChunkRecord:
        return cls(**{**entry, "rows": tuple(entry["rows"])})


def _qa_bytes(qa: dict[str, Any]) -> bytes:
    return (json.dumps(qa, ensure_ascii=False) + "\n").encode("utf-8")


class ChunkStore:
    """The output folder of one run (one shard)."""

    def __init__(self, out_dir: Path | str, identity: RunIdentity, *, writer: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.identity = identity
        self.chunks_dir = self.out_dir / "chunks"
        self.manifest_path = self.out_dir / MANIFEST
        self.records: dict[int, ChunkRecord] = {}
        self.deferrals: dict[int, int] = {}  # chunk → runs that left it for later (transient failures)
        self._legacy_qa: dict[int, dict[str, Any]] = {}
        self._log: AppendLog | None = None
        self._deferred_log: AppendLog | None = None
        self._lock: IO[bytes] | None = None
        if writer:
            prepare_out_dir(self.out_dir)
            self._lock = self._acquire_lock()
            for leftover in (*self.out_dir.glob(".*.tmp"), *self.chunks_dir.glob(".*.tmp")):
                leftover.unlink(missing_ok=True)  # temp files of a writer killed mid-write
        try:
            if self.manifest_path.exists():
                self._resume(writer)
            else:
                (self.out_dir / COMMIT_LOG).unlink(missing_ok=True)  # a log without its manifest is stale
                atomic_write_json(
                    self.manifest_path,
                    {
                        "format": FORMAT_VERSION,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "run": self.identity.to_json(),
                    },
                )
            if writer:
                self._log = AppendLog(self.out_dir / COMMIT_LOG)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, out_dir: Path | str) -> ChunkStore:
        """An existing output folder, with the identity its manifest records (read only).

        Raises:
            TranslateError: when the folder has no readable manifest.
        """
        manifest = load_manifest(out_dir)
        return cls(out_dir, _identity_from_json(manifest["run"]), writer=False)

    def _acquire_lock(self) -> IO[bytes]:
        handle = (self.out_dir / ".lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released by the OS if we die
        except BlockingIOError:
            handle.close()
            raise TranslateError(
                f"Otra ejecución está escribiendo en {self.out_dir} ahora mismo. Espera a que termine, "
                "o da a esta ejecución otra carpeta de salida (una carpeta por parte)."
            ) from None
        except OSError:  # file systems without locks (some network mounts): carry on unlocked
            log.warning("no se puede bloquear %s; asegúrate de que solo una ejecución escribe en ella", self.out_dir)
        return handle

    def close(self) -> None:
        """Release the folder's lock and logs (the store stays readable)."""
        for log_file in (self._log, self._deferred_log):
            if log_file is not None:
                log_file.close()
        self._log = self._deferred_log = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ---- resume
    def _resume(self, writer: bool) -> None:
        manifest = load_manifest(self.out_dir)
        previous = _identity_from_json(manifest["run"])
        if previous != self.identity:
            diffs = [
                f"{key}: la carpeta tiene {getattr(previous, key)!s}, esta ejecución tiene {getattr(self.identity, key)!s}"
                for key in ("input_sha256", "total_rows", "chunk_size", "shard", "backend")
                if getattr(previous, key) != getattr(self.identity, key)
            ]
            raise TranslateError(
                f"{self.out_dir} contiene otra ejecución, así que no se puede reanudar con estos ajustes:\n  "
                + "\n  ".join(diffs)
                + "\nUsa los mismos ajustes para reanudar, u otra carpeta de salida para una ejecución nueva."
            )
        if manifest["format"] == 1:
            self._resume_format_1(manifest, writer)
        else:
            for entry in read_commit_log(self.out_dir):  # a later entry of a chunk replaces an earlier one
                record = ChunkRecord.from_json(entry)
                if self._intact(record):
                    self.records[record.chunk] = record
                else:
                    self.records.pop(record.chunk, None)  # damaged or missing: translated again
        for entry in _complete_lines(self.out_dir / DEFERRED_LOG)[0]:
            chunk = int(entry["chunk"])
            if chunk not in self.records:
                self.deferrals[chunk] = self.deferrals.get(chunk, 0) + 1

    def _resume_format_1(self, manifest: dict[str, Any], writer: bool) -> None:
        """Read a folder of the previous format; a writer converts it to the commit log.

        Chunks that quarantined rows after *transient* backend failures are left out, so
        that those rows are translated again.
        """
        entries = []
        for entry in manifest["chunks"].values():
            entry = dict(entry)
            qa = entry.pop("qa")
            record = ChunkRecord.from_json({**entry, "qa_file": "", "qa_sha256": ""})
            if not self._intact(record):
                continue
            quarantine = read_jsonl(self.out_dir / record.quarantine_file)
            # format 1 wrote English reasons ("transient"); later ones are Spanish ("transitorio")
            if any(re.search(r"\btransient\b|\btransitorio\b", str(q.get("reason", ""))) for q in quarantine):
                continue
            entries.append((record, qa))
        if not writer:
            for record, qa in entries:
                self.records[record.chunk] = record
                self._legacy_qa[record.chunk] = qa
            return
        converted = AppendLog(self.out_dir / COMMIT_LOG)
        try:
            for record, qa in entries:
                qname = f"chunks/chunk-{record.chunk:06d}.qa.json"
                qa_data = _qa_bytes(qa)
                atomic_write_bytes(self.out_dir / qname, qa_data)
                record = ChunkRecord.from_json(
                    {**record.to_json(), "qa_file": qname, "qa_sha256": sha256_bytes(qa_data)}
                )
                converted.append(record.to_json())
                self.records[record.chunk] = record
        finally:
            converted.close()
        atomic_write_json(
            self.manifest_path,
            {"format": FORMAT_VERSION, "created": manifest.get("updated", ""), "run": manifest["run"]},
        )

    def _intact(self, record: ChunkRecord) -> bool:
        pairs = [(record.file, record.sha256), (record.quarantine_file, record.quarantine_sha256)]
        if record.qa_file:
            pairs.append((record.qa_file, record.qa_sha256))
        for name, digest in pairs:
            path = self.out_dir / name
            if not path.is_file() or sha256_bytes(path.read_bytes()) != digest:
                return False  # damaged or missing: the chunk is translated again
        return True

    # ---- chunks
    def is_done(self, chunk: int) -> bool:
        return chunk in self.records

    def pending(self) -> list[int]:
        """This shard's chunks that are not finished yet, in order."""
        return [k for k in self.identity.my_chunks() if k not in self.records]

    def commit(
        self,
        chunk: int,
        rows: Sequence[dict[str, Any]],
        quarantined: Sequence[dict[str, Any]],
        stats: dict[str, Any],
        qa: dict[str, Any],
    ) -> ChunkRecord:
        """Write a finished chunk's files, then append its line to the commit log.

        The bytes written do not depend on how many chunks are already committed.
        """
        if self._log is None:
            raise RuntimeError("this ChunkStore was opened read-only")
        base = f"chunks/chunk-{chunk:06d}"
        names = (f"{base}.jsonl", f"{base}.quarantine.jsonl", f"{base}.qa.json")
        payloads = (jsonl_bytes(rows), jsonl_bytes(quarantined), _qa_bytes(qa))
        for name, data in zip(names, payloads, strict=True):
            atomic_write_bytes(self.out_dir / name, data, sync_dir=False)
        fsync_dir(self.chunks_dir)  # the three renames are durable before the commit point
        record = ChunkRecord(
            chunk=chunk,
            rows=self.identity.chunk_rows(chunk),
            file=names[0],
            sha256=sha256_bytes(payloads[0]),
            quarantine_file=names[1],
            quarantine_sha256=sha256_bytes(payloads[1]),
            qa_file=names[2],
            qa_sha256=sha256_bytes(payloads[2]),
            translated=len(rows),
            quarantined=len(quarantined),
            stats=stats,
        )
        with critical_section():
            self._log.append(record.to_json())  # the commit point
            self.records[chunk] = record
        return record

    def defer(self, chunk: int, reason: str) -> int:
        """Record that this run leaves ``chunk`` for the next one; return how many runs did so."""
        if self._deferred_log is None:
            self._deferred_log = AppendLog(self.out_dir / DEFERRED_LOG)
        self._deferred_log.append({"chunk": chunk, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "reason": reason})
        self.deferrals[chunk] = self.deferrals.get(chunk, 0) + 1
        return self.deferrals[chunk]

    def qa(self, record: ChunkRecord) -> dict[str, Any]:
        """The quality summary of a committed chunk."""
        if not record.qa_file:
            return self._legacy_qa[record.chunk]
        return json.loads((self.out_dir / record.qa_file).read_text(encoding="utf-8"))

    def iter_quarantine(self) -> Iterator[dict[str, Any]]:
        for _, record in sorted(self.records.items()):
            yield from read_jsonl(self.out_dir / record.quarantine_file)


def load_manifest(out_dir: Path | str) -> dict[str, Any]:
    """The manifest of ``out_dir`` (the run's identity).

    Raises:
        TranslateError: when the folder has no readable manifest.
    """
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranslateError(
            f"{out_dir} no es una carpeta de salida de la traducción (no tiene {MANIFEST}). "
            "Pasa la carpeta OUT_DIR que diste a `python -m utils.translate run`."
        ) from None
    except (OSError, ValueError) as exc:
        raise TranslateError(
            f"No se puede leer {path}: {exc}. El fichero se escribe de forma atómica: ¿se editó a mano?"
        ) from None
    if manifest.get("format") not in READABLE_FORMATS:
        raise TranslateError(
            f"{path} tiene el formato {manifest.get('format')!r}; esta versión lee los formatos "
            f"{', '.join(map(str, READABLE_FORMATS))}."
        )
    return manifest


# --------------------------------------------------------------------------- cache


class TranslationCache:
    """Source sentence → translation, per backend, in SQLite (crash-safe, shared by resumes).

    Each batch is committed as soon as it is translated, so after a crash the resumed run
    does not pay again for the segments of the interrupted chunk.
    """

    def __init__(self, path: Path | str, backend: str) -> None:
        self.path = Path(path)
        self.backend = backend
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS translations ("
            " backend TEXT NOT NULL, source TEXT NOT NULL, target TEXT NOT NULL,"
            " PRIMARY KEY (backend, source))"
        )
        self._db.commit()

    def get_many(self, sources: Iterable[str]) -> dict[str, str]:
        """The cached translations of ``sources`` (missing ones are absent)."""
        found: dict[str, str] = {}
        query = "SELECT target FROM translations WHERE backend = ? AND source = ?"
        for source in sources:
            row = self._db.execute(query, (self.backend, source)).fetchone()
            if row is not None:
                found[source] = row[0]
        return found

    def put_many(self, pairs: Iterable[tuple[str, str]]) -> None:
        try:
            self._db.executemany(
                "INSERT OR REPLACE INTO translations (backend, source, target) VALUES (?, ?, ?)",
                [(self.backend, s, t) for s, t in pairs],
            )
            self._db.commit()
        except sqlite3.OperationalError as exc:
            self._db.rollback()
            if "full" in str(exc).lower():  # "database or disk is full": the same as any full disk
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (SQLite: {exc})", str(self.path)) from exc
            raise

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM translations WHERE backend = ?", (self.backend,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()
