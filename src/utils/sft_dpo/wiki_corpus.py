"""A clean Spanish Wikipedia corpus for generating SFT data (notebook 02).

Raw Wikipedia has pages that make poor sources for instruction data: disambiguation
pages (lists of links), stubs too short to ask anything about, articles too long for the
generator's context, and end sections (references, external links) that are lists, not
prose.  :func:`clean_articles` drops the first three and strips the last, and counts what
it did so the notebook can show it.

Sources: the full profile streams ``wikimedia/wikipedia`` (config ``20231101.es``); the
mini profile reads ``data/wikipedia_es_mini.jsonl``, encyclopedic articles written for
the course with the same fields (``id``, ``title``, ``text``), including a few pages the
filters must drop.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice

from utils.core.errors import CourseError
from utils.core.paths import data_dir

#: End sections of Spanish Wikipedia articles that are lists, not prose.  The Manual of
#: Style puts them last, so the article is cut at the first one.
BOILERPLATE_SECTIONS: tuple[str, ...] = (
    "Referencias",
    "Notas",
    "Notas y referencias",
    "Enlaces externos",
    "Bibliografía",
    "Véase también",
    "Fuentes",
    "Otras lecturas",
)
_DISAMBIGUATION_TITLE = re.compile(r"\(desambiguaci[oó]n\)\s*$", re.IGNORECASE)
_DISAMBIGUATION_TEXT = re.compile(r"^\s*[^\n]{0,120}\bpuede (?:referirse|hacer referencia) a\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Article:
    """One article, ready to generate from."""

    id: str
    title: str
    text: str


@dataclass
class CorpusReport:
    """What the filters did: how many articles were read, kept and dropped (by reason)."""

    read: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    stripped_sections: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "articles_read": self.read,
            "articles_kept": self.kept,
            **{f"dropped_{reason}": n for reason, n in sorted(self.dropped.items())},
            "sections_stripped": self.stripped_sections,
        }


def _heading(line: str) -> str:
    """The heading text of ``line`` (plain or ``== wiki ==`` style), normalized."""
    return line.strip().strip("=").strip().rstrip(":").casefold()


_BOILERPLATE = {title.casefold() for title in BOILERPLATE_SECTIONS}


def strip_sections(text: str, titles: Iterable[str] | None = None) -> tuple[str, int]:
    """Cut ``text`` at the first end section (Referencias, Enlaces externos…).

    A heading is a line whose whole text is one of ``titles`` (default
    :data:`BOILERPLATE_SECTIONS`), plain or in ``== wiki ==`` style.

    Returns:
        The text before that heading (trailing blank lines removed) and how many end
        sections were removed.
    """
    wanted = _BOILERPLATE if titles is None else {t.casefold() for t in titles}
    lines = text.splitlines()
    cut = next((i for i, line in enumerate(lines) if line.strip() and _heading(line) in wanted), None)
    if cut is None:
        return text.strip(), 0
    removed = sum(1 for line in lines[cut:] if line.strip() and _heading(line) in wanted)
    return "\n".join(lines[:cut]).strip(), removed


def is_disambiguation(title: str, text: str) -> bool:
    """True for disambiguation pages: «X (desambiguación)» or «X puede referirse a: …»."""
    return bool(_DISAMBIGUATION_TITLE.search(title) or _DISAMBIGUATION_TEXT.match(text))


def clean_articles(
    rows: Iterable[dict],
    *,
    min_chars: int,
    max_chars: int,
    limit: int | None = None,
    report: CorpusReport | None = None,
) -> Iterator[Article]:
    """Yield the articles worth generating from, at most ``limit`` of them.

    Order of the filters: disambiguation pages are dropped first, then end sections are
    stripped, then the length of what is left must lie in ``[min_chars, max_chars]``
    (so a stub padded with a long reference list is still a stub).

    Args:
        rows: dicts with ``title`` and ``text`` (and ``id``; the title is used otherwise).
        report: filled in as rows are read (counts per drop reason).
    """
    report = report if report is not None else CorpusReport()
    for row in rows:
        if limit is not None and report.kept >= limit:
            return
        report.read += 1
        title, text = str(row.get("title", "")).strip(), str(row.get("text", ""))
        if not title or not text.strip():
            report.dropped["empty"] += 1
            continue
        if is_disambiguation(title, text):
            report.dropped["disambiguation"] += 1
            continue
        body, removed = strip_sections(text)
        if len(body) < min_chars:
            report.dropped["too_short"] += 1
            continue
        if len(body) > max_chars:
            report.dropped["too_long"] += 1
            continue
        report.stripped_sections += removed
        report.kept += 1
        yield Article(id=str(row.get("id") or title), title=title, text=body)


def excerpt(text: str, max_chars: int) -> str:
    """The start of ``text``, at most ``max_chars``, cut at a paragraph or sentence end.

    The generator sees this excerpt (a small model has a small context window); the
    record in Argilla shows the same excerpt, so reviewers judge against what it saw.
    """
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n\n", ". ", "\n"):
        pos = head.rfind(sep)
        if pos >= max_chars // 2:
            return head[: pos + (1 if sep == ". " else 0)].strip()
    return head.strip()


class CorpusNotFoundError(CourseError):
    """The mini corpus file is missing or malformed; the message says which line."""


def read_jsonl(filename: str) -> list[dict]:
    """Rows of ``data/<filename>`` (one JSON object per line).

    Raises:
        CorpusNotFoundError: naming the file and line that could not be read.
    """
    path = data_dir() / filename
    if not path.is_file():
        raise CorpusNotFoundError(f"{path} not found; the mini corpus ships with the repository (git checkout data/).")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise CorpusNotFoundError(f"{path}:{number} is not valid JSON ({exc}); fix or remove that line.") from None
    return rows


def load_source(dataset: str, config: str, scan_limit: int) -> Iterable[dict]:
    """The raw rows: ``local:data`` → ``data/<config>``; else the Hub dataset, streamed.

    Streaming reads only the rows the filters consume (the Spanish dump is ~6 GB), at
    most ``scan_limit``.
    """
    if dataset == "local:data":
        return read_jsonl(config)[:scan_limit]
    from datasets import load_dataset

    stream = load_dataset(dataset, config, split="train", streaming=True)
    return islice(iter(stream), scan_limit)
