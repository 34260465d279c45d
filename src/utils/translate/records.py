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

from utils.core.errors import CourseError
from utils.core.paths import data_dir
from utils.core.settings import TranslateSettings

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


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _refuse_utf16(path: Path) -> None:
    """Stop early with a clear message when ``path`` is UTF-16 (or UTF-32) text."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if head.startswith(_UTF16_BOMS) or b"\x00" in head:
        raise TranslateError(
            f"{path} parece estar en UTF-16 (tiene bytes nulos o la marca de UTF-16 al principio), no en "
            "UTF-8. Guárdalo como «UTF-8» (en el Bloc de notas: Guardar como → Codificación UTF-8; en "
            f"Python: `open(destino, 'w', encoding='utf-8')`) y vuelve a ejecutar el comando."
        )


def _not_utf8_hint(data: bytes) -> str:
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "Vuelve a guardarlo como UTF-8."
    return "Parece latin-1/Windows-1252: vuelve a guardarlo como UTF-8."


def load_rows(path: Path | str, limit: int | None = None) -> list[Any]:
    """Read LLaVA rows from a ``.json`` array or a ``.jsonl`` file.

    JSON Lines lines that are not valid JSON come back as :class:`Malformed` so that one
    bad line does not stop the job (blank lines are skipped).  Lines end at ``\n`` only:
    U+2028 or U+0085 inside a JSON string do not split a row.  A UTF-8 byte-order mark
    (Excel writes one) is accepted.

    Args:
        path: the input file.
        limit: keep only the first ``limit`` rows (``None`` or 0: all).

    Raises:
        TranslateError: the file is missing or UTF-16, a ``.json`` file is not a valid
            UTF-8 JSON array, or ``limit`` is negative.
    """
    path = Path(path)
    if limit is not None and limit < 0:
        raise TranslateError(f"limit={limit} no es válido: usa un número de filas positivo (o nada para todas).")
    if not path.is_file():
        raise TranslateError(
            f"No se encuentra el fichero de entrada {path}. Pasa la ruta de un fichero LLaVA .json o .jsonl."
        )
    _refuse_utf16(path)
    rows: list[Any]
    if path.suffix.lower() in {".jsonl", ".ndjson"}:
        rows = []
        with path.open("rb") as handle:  # binary: iteration splits on b"\n" only
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")  # tolerate a byte-order mark
                except UnicodeDecodeError as exc:
                    rows.append(Malformed(f"la línea {number} no es UTF-8 válido (byte {exc.start})"))
                    continue
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    rows.append(
                        Malformed(
                            f"la línea {number} no es JSON válido (el lector dice «{exc.msg}», columna {exc.colno})"
                        )
                    )
                if limit and len(rows) >= limit:
                    break
        return rows
    raw_bytes = path.read_bytes()
    try:
        data = json.loads(raw_bytes.decode("utf-8-sig"))  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        raise TranslateError(
            f"{path} no es UTF-8 válido (byte {exc.start}). {_not_utf8_hint(raw_bytes)} "
            "O conviértelo a JSON Lines para que las filas dañadas vayan a cuarentena una a una."
        ) from None
    except json.JSONDecodeError as exc:
        raise TranslateError(
            f"{path} no es JSON válido (el lector dice «{exc.msg}») en la línea {exc.lineno}, columna {exc.colno}. "
            "Corrige el fichero, o conviértelo a JSON Lines (.jsonl) para que las filas malas vayan a "
            "cuarentena una a una en vez de detener el trabajo."
        ) from None
    except RecursionError:
        raise TranslateError(
            f"{path} tiene estructuras JSON anidadas a demasiada profundidad para leerlas. "
            "Una fila LLaVA solo tiene dos niveles (fila → turnos): revisa el fichero."
        ) from None
    if not isinstance(data, list):
        raise TranslateError(
            f"{path} contiene un {type(data).__name__} de JSON, no una lista de filas. Los ficheros LLaVA son "
            '`[{"id": ..., "conversations": [...]}, ...]`.'
        )
    return data[:limit] if limit else data


def check_usable(rows: Sequence[Any], path: Path | str) -> None:
    """Refuse an input with no row at all, or with no row that could be translated.

    A run over such a file would finish "complete" with nothing translated.

    Raises:
        TranslateError: naming the file and the first reasons.
    """
    if not rows:
        raise TranslateError(
            f"{path} no tiene ninguna fila (¿fichero vacío, o --limit demasiado pequeño?). "
            "Pasa un fichero LLaVA con filas."
        )
    reasons: list[str] = []
    for index, obj in enumerate(rows):
        parsed = validate_row(obj, index)
        if not isinstance(parsed, str):
            return
        if len(reasons) < 3:
            reasons.append(f"fila {index}: {parsed}")
    raise TranslateError(
        f"Ninguna de las {len(rows)} filas de {path} es una fila LLaVA válida, así que no hay nada que "
        f"traducir. Primeros motivos: {'; '.join(reasons)}. ¿Es el fichero correcto (JSON/JSON Lines "
        "en UTF-8, con `id` y `conversations`)?"
    )


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
        return f"la fila es un {type(obj).__name__} de JSON; se esperaba un objeto"
    row_id = obj.get("id")
    if isinstance(row_id, bool) or not isinstance(row_id, (str, int)):
        return "falta 'id' o no es válido (se esperaba un texto)"
    if "conversations" not in obj:
        return "falta la clave 'conversations'"
    turns_raw = obj["conversations"]
    if not isinstance(turns_raw, list):
        return f"'conversations' es un {type(turns_raw).__name__}; se esperaba una lista de turnos"
    if not turns_raw:
        return "'conversations' está vacía"
    turns: list[Turn] = []
    for number, turn in enumerate(turns_raw):
        if not isinstance(turn, dict):
            return f"el turno {number} es un {type(turn).__name__}; se esperaba un objeto con 'from' y 'value'"
        for key in ("from", "value"):
            if key not in turn:
                return f"al turno {number} le falta la clave '{key}'"
        if turn["from"] not in ROLES:
            return f"turno {number}: 'from' vale {turn['from']!r}; se esperaba 'human' o 'gpt'"
        if not isinstance(turn["value"], str):
            kind = "null" if turn["value"] is None else type(turn["value"]).__name__
            return f"turno {number}: 'value' es {kind}; se esperaba un texto"
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
