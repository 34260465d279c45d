"""Chunk files, the manifest and the translation cache of one output folder.

Layout of ``OUT_DIR``::

    manifest.json             run settings + one entry per finished chunk (the commit log)
    chunks/chunk-000012.jsonl        translated rows of chunk 12
    chunks/chunk-000012.quarantine.jsonl  rows of chunk 12 set aside, with reasons
    cache.sqlite              source sentence → translation, per backend
    quarantine.jsonl          all quarantined rows (rebuilt at the end of each run)
    report.json               the run report (rebuilt at the end of each run)

Every file is written to a temporary name, flushed to disk and renamed into place, so a
reader never sees half a file.  A chunk counts as finished only once the manifest lists
it together with the SHA-256 of its file; a ``kill -9`` between writing the chunk and
updating the manifest just means the chunk is translated again and overwritten.  Hence a
crash loses at most the chunk in flight and never leaves a duplicate or corrupt chunk.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
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
FORMAT_VERSION = 1


# --------------------------------------------------------------------------- atomic files


@contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """Open a temporary file next to ``path``; on success flush, fsync and rename it into place.

    If the block raises (or the process dies), ``path`` keeps its previous content.
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
    try:  # make the rename itself durable (some network/FUSE file systems cannot)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    with atomic_writer(path) as handle:
        handle.write(data)


def jsonl_bytes(records: Iterable[dict[str, Any]]) -> bytes:
    """JSON Lines encoding (UTF-8, one object per line)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def atomic_write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as pretty JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All records of a JSON Lines file."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- run identity


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (0-based): chunk ``k`` belongs to shard ``k % count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise TranslateError(
                f"Invalid shard {self.index}/{self.count}: use i/n with 0 ≤ i < n, e.g. 0/4, 1/4, 2/4 and 3/4."
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
            raise TranslateError(f"--shard {text!r} is not of the form i/n (e.g. 0/4).") from None
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


# --------------------------------------------------------------------------- the store


@dataclass(frozen=True)
class ChunkRecord:
    """The manifest entry of a finished chunk."""

    chunk: int
    rows: tuple[int, int]
    file: str
    sha256: str
    quarantine_file: str
    quarantine_sha256: str
    translated: int
    quarantined: int
    stats: dict[str, Any]  # segments, seconds, cache hits, fallbacks, retries...
    qa: dict[str, Any]  # flag counts and flagged rows of this chunk


class ChunkStore:
    """The output folder of one run (one shard)."""

    def __init__(self, out_dir: Path | str, identity: RunIdentity, *, writer: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.identity = identity
        self.chunks_dir = self.out_dir / "chunks"
        self.chunks_dir.mkdir(parents=True, exist_ok=True)
        self._lock: IO[bytes] | None = self._acquire_lock() if writer else None
        self.manifest_path = self.out_dir / MANIFEST
        self.records: dict[int, ChunkRecord] = {}
        if writer:
            for leftover in (*self.out_dir.glob(".*.tmp"), *self.chunks_dir.glob(".*.tmp")):
                leftover.unlink(missing_ok=True)  # temp files of a writer killed mid-write
        if self.manifest_path.exists():
            self._resume()
        else:
            self._save()

    @classmethod
    def open(cls, out_dir: Path | str) -> ChunkStore:
        """An existing output folder, with the identity its manifest records.

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
                f"Another run is writing to {self.out_dir} right now. Wait for it to finish, "
                "or give this run another output folder (one folder per shard)."
            ) from None
        except OSError:  # file systems without locks (some network mounts): carry on unlocked
            log.warning("cannot lock %s; make sure only one run writes to it", self.out_dir)
        return handle

    def close(self) -> None:
        """Release the folder's lock (the store stays readable)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    # ---- manifest
    def _resume(self) -> None:
        manifest = load_manifest(self.out_dir)
        previous = _identity_from_json(manifest["run"])
        if previous != self.identity:
            diffs = [
                f"{key}: folder has {getattr(previous, key)!s}, this run has {getattr(self.identity, key)!s}"
                for key in ("input_sha256", "total_rows", "chunk_size", "shard", "backend")
                if getattr(previous, key) != getattr(self.identity, key)
            ]
            raise TranslateError(
                f"{self.out_dir} holds a different run, so it cannot be resumed with these settings:\n  "
                + "\n  ".join(diffs)
                + "\nUse the same settings to resume, or another output folder for a new run."
            )
        for entry in manifest["chunks"].values():
            record = ChunkRecord(**{**entry, "rows": tuple(entry["rows"])})
            if self._intact(record):
                self.records[record.chunk] = record

    def _intact(self, record: ChunkRecord) -> bool:
        for name, digest in ((record.file, record.sha256), (record.quarantine_file, record.quarantine_sha256)):
            path = self.out_dir / name
            if not path.is_file() or sha256_bytes(path.read_bytes()) != digest:
                return False  # damaged or missing: the chunk is translated again
        return True

    def _save(self) -> None:
        atomic_write_json(
            self.manifest_path,
            {
                "format": FORMAT_VERSION,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "run": self.identity.to_json(),
                "chunks": {str(k): asdict(r) for k, r in sorted(self.records.items())},
            },
        )

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
        """Write a finished chunk (rows, then quarantine, then the manifest entry)."""
        name = f"chunks/chunk-{chunk:06d}.jsonl"
        qname = f"chunks/chunk-{chunk:06d}.quarantine.jsonl"
        data, qdata = jsonl_bytes(rows), jsonl_bytes(quarantined)
        atomic_write_bytes(self.out_dir / name, data)
        atomic_write_bytes(self.out_dir / qname, qdata)
        record = ChunkRecord(
            chunk=chunk,
            rows=self.identity.chunk_rows(chunk),
            file=name,
            sha256=sha256_bytes(data),
            quarantine_file=qname,
            quarantine_sha256=sha256_bytes(qdata),
            translated=len(rows),
            quarantined=len(quarantined),
            stats=stats,
            qa=qa,
        )
        self.records[chunk] = record
        self._save()  # the commit point
        return record

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for _, record in sorted(self.records.items()):
            yield from read_jsonl(self.out_dir / record.file)

    def iter_quarantine(self) -> Iterator[dict[str, Any]]:
        for _, record in sorted(self.records.items()):
            yield from read_jsonl(self.out_dir / record.quarantine_file)


def load_manifest(out_dir: Path | str) -> dict[str, Any]:
    """The manifest of ``out_dir``.

    Raises:
        TranslateError: when the folder has no readable manifest.
    """
    path = Path(out_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranslateError(
            f"{out_dir} is not a translation output folder (no {MANIFEST}). "
            "Pass the OUT_DIR you gave to `python -m utils.translate run`."
        ) from None
    except (OSError, ValueError) as exc:
        raise TranslateError(f"Cannot read {path}: {exc}. The file is written atomically; was it edited by hand?") from None
    if manifest.get("format") != FORMAT_VERSION:
        raise TranslateError(f"{path} has format {manifest.get('format')!r}; this version reads {FORMAT_VERSION}.")
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
        self._db.executemany(
            "INSERT OR REPLACE INTO translations (backend, source, target) VALUES (?, ?, ?)",
            [(self.backend, s, t) for s, t in pairs],
        )
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM translations WHERE backend = ?", (self.backend,)).fetchone()[0]

    def close(self) -> None:
        self._db.close()
