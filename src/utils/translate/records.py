"""LLaVA conversation rows: read them, validate them, write translated ones.

LLaVA-Instruct-150K is one JSON array of rows like::

    {"id": "000000033471", "image": "000000033471.jpg",
     "conversations": [{"from": "human", "value": "<image>\\nWhat color is the bus?"},
                       {"from": "gpt", "value": "The bus is white and red."}]}

:func:`load_rows` reads that format or JSON Lines (one row per line).  A row that cannot
be used is not an exception that stops the job: :func:`validate_row` returns the reason,
and the engine sends the row to quarantine.  Translated rows keep every key of the input,
put the Spanish turns in ``conversations`` and the English ones in ``conversations_en``,
and record their position in the input as ``row_index`` (ids repeat in LLaVA when an image
has several tasks, so positions, not ids, prove coverage).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.errors import CourseError
from utils.paths import data_dir
from utils.settings import TranslateSettings

ROLES = ("human", "gpt")


class TranslateError(CourseError):
    """A problem the user must fix (bad input, wrong folder, incompatible resume).

    The message says what is wrong, where, and how to fix it; in Jupyter it is shown
    without a traceback.
    """


@dataclass(frozen=True)
class Malformed:
    """A row (or JSON Lines line) that cannot be parsed as JSON."""

    reason: str


@dataclass(frozen=True)
class Turn:
    """One validated turn."""

    role: str
    value: str


@dataclass(frozen=True)
class ValidRow:
    """A row that passed validation: its original object and its turns."""

    index: int
    id: str
    raw: dict[str, Any]
    turns: tuple[Turn, ...]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file (identifies the input of a run, for safe resumes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_rows(path: Path | str, limit: int | None = None) -> list[Any]:
    """Read LLaVA rows from a ``.json`` array or a ``.jsonl`` file.

    JSON Lines lines that are not valid JSON come back as :class:`Malformed` so that one
    bad line does not stop the job (blank lines are skipped).

    Args:
        path: the input file.
        limit: keep only the first ``limit`` rows (``None`` or 0: all).

    Raises:
        TranslateError: the file is missing, or a ``.json`` file is not a valid JSON array.
    """
    path = Path(path)
    if not path.is_file():
        raise TranslateError(f"Input file not found: {path}. Pass the path of a LLaVA .json or .jsonl file.")
    rows: list[Any]
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = []
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate a byte-order mark
                except UnicodeDecodeError as exc:
                    rows.append(Malformed(f"line {number} is not valid UTF-8 (byte {exc.start})"))
                    continue
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    rows.append(Malformed(f"line {number} is not valid JSON ({exc.msg} at column {exc.colno})"))
                if limit and len(rows) >= limit:
                    break
        return rows
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        raise TranslateError(
            f"{path} is not valid UTF-8 (byte {exc.start}). Re-save it as UTF-8, or convert it to "
            "JSON Lines so that the damaged rows are quarantined one by one."
        ) from None
    except json.JSONDecodeError as exc:
        raise TranslateError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            "Fix the file, or convert it to JSON Lines (.jsonl) so that bad rows are quarantined "
            "one by one instead of stopping the job."
        ) from None
    if not isinstance(data, list):
        raise TranslateError(
            f"{path} holds a JSON {type(data).__name__}, not an array of rows. LLaVA files are "
            '`[{"id": ..., "conversations": [...]}, ...]`.'
        )
    return data[:limit] if limit else data


def input_file(cfg: TranslateSettings) -> Path:
    """The LLaVA file of a profile: ``data/<file>`` in mini, downloaded once from the Hub in full."""
    if cfg.dataset_id == "local:data":
        return data_dir() / cfg.dataset_file
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id=cfg.dataset_id, filename=cfg.dataset_file, repo_type="dataset"))


def validate_row(obj: Any, index: int) -> ValidRow | str:
    """Check one row; return it parsed, or the reason it must be quarantined."""
    if isinstance(obj, Malformed):
        return obj.reason
    if not isinstance(obj, dict):
        return f"row is a JSON {type(obj).__name__}, expected an object"
    row_id = obj.get("id")
    if isinstance(row_id, bool) or not isinstance(row_id, (str, int)):
        return "missing or invalid 'id' (expected a string)"
    if "conversations" not in obj:
        return "missing key 'conversations'"
    turns_raw = obj["conversations"]
    if not isinstance(turns_raw, list):
        return f"'conversations' is a {type(turns_raw).__name__}, expected a list of turns"
    if not turns_raw:
        return "'conversations' is empty"
    turns: list[Turn] = []
    for number, turn in enumerate(turns_raw):
        if not isinstance(turn, dict):
            return f"turn {number} is a {type(turn).__name__}, expected an object with 'from' and 'value'"
        for key in ("from", "value"):
            if key not in turn:
                return f"turn {number} has no '{key}' key"
        if turn["from"] not in ROLES:
            return f"turn {number}: 'from' is {turn['from']!r}, expected 'human' or 'gpt'"
        if not isinstance(turn["value"], str):
            kind = "null" if turn["value"] is None else type(turn["value"]).__name__
            return f"turn {number}: 'value' is {kind}, expected a string"
        turns.append(Turn(turn["from"], turn["value"]))
    return ValidRow(index=index, id=str(row_id), raw=obj, turns=tuple(turns))


def translated_row(row: ValidRow, values_es: Sequence[str]) -> dict[str, Any]:
    """The output row: input keys, Spanish ``conversations``, English ``conversations_en``."""
    out = {k: v for k, v in row.raw.items() if k not in {"conversations", "conversations_en", "row_index"}}
    out["id"] = row.id
    out["conversations"] = [{"from": t.role, "value": v} for t, v in zip(row.turns, values_es, strict=True)]
    out["conversations_en"] = [{"from": t.role, "value": t.value} for t in row.turns]
    out["row_index"] = row.index
    return out


def quarantine_entry(obj: Any, index: int, reason: str) -> dict[str, Any]:
    """A quarantine record: the row's id (if any), its position, the reason and the row itself."""
    row_id = obj.get("id") if isinstance(obj, dict) else None
    original = None if isinstance(obj, Malformed) else obj
    return {
        "id": row_id if isinstance(row_id, (str, int)) and not isinstance(row_id, bool) else None,
        "row_index": index,
        "reason": reason,
        "row": original,
    }
