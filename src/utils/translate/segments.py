"""Split a conversation value into what a translator may touch and what it must not.

A LLaVA value such as ``"<image>\\nHow many dogs?"`` or a long answer with a list and a
code block is turned into a :class:`Template`: a sequence of *literal* pieces copied to the
output byte for byte (``<image>``, newlines, fenced code blocks, list markers, indentation,
the spaces between sentences) and *segments* (one sentence each) that go to the
translator.  Rendering the template with the translations puts every literal back in its
exact place, so the turn structure and the ``<image>`` tag cannot be damaged, whatever
the model does.

Inside a sentence, *inline* spans (inline code, URLs, e-mails, numbers, emoji, tags,
table pipes, bold markers, very long tokens) must come back verbatim.  The sentence is
first translated whole, which gives the model the context it needs ("3 dogs" → "3
perros"); :func:`verify_translation` then checks that every inline span survived.  If one
did not, the engine translates the sentence again in :attr:`Segment.parts` — the pieces
between the spans — and keeps the spans literally.  Protection is therefore guaranteed,
never hoped for.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

IMAGE_TOKEN = "<image>"
FENCE = "```"

#: Fenced code blocks (an unclosed fence protects the rest of the value).
CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
#: Block-level separators kept literally: the image tag and line breaks.
_BLOCK_SPLIT = re.compile(r"(<image>|\r\n|\n|\r)")
#: Leading markup of a line: indentation, bullets, numbered items, headings, quotes.
LINE_PREFIX = re.compile(r"^[ \t]*(?:(?:[-*+•]|\d{1,3}[.)]|#{1,6}|>)[ \t]+)*")
_LETTER = re.compile(r"[^\W\d_]")

#: Numbers as whole tokens: 3, 2.50, 1,000, 9:00, 3/4 (not the 3 of "3rd" or "v3").
NUMBER_PATTERN = r"(?<![\w.,])\d+(?:[.,:/]\d+)*(?!\w)"
#: Inline spans that must survive verbatim, most specific first.
DEFAULT_INLINE_PATTERNS: tuple[str, ...] = (
    r"`[^`\n]+`",  # inline code
    r"(?:https?://|www\.)[^\s<>\"'`]*[^\s<>\"'`.,;:!?)\]]",  # URLs
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # e-mail addresses
    r"</?[A-Za-z][\w-]*(?:\s[^<>\n]*)?/?>",  # tags such as <br> or <video>
    r"\S{40,}",  # very long tokens: hashes, base64, paths (not language)
    NUMBER_PATTERN,  # numbers: 3, 2.50, 1,000, 9:00, 3/4
    r"[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F\u200D]+",  # emoji
    r"\*\*|__|\|",  # bold markers and table pipes
)

#: Abbreviations that end with a period but do not end a sentence.
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "approx",
        "fig",
        "no",
        "nos",
        "vol",
        "u.s",
        "u.k",
        "a.m",
        "p.m",
        "inc",
        "ltd",
        "co",
    ]
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")


@dataclass(frozen=True)
class ProtectionRules:
    """What counts as protected inline content, and how long a segment may be.

    Args:
        inline_patterns: regular expressions of spans that must come back verbatim.
        max_segment_chars: longer sentences are cut at commas or spaces (MT models have
            a token limit and translate long inputs worse).
    """

    inline_patterns: tuple[str, ...] = DEFAULT_INLINE_PATTERNS
    max_segment_chars: int = 400
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_segment_chars < 20:
            raise ValueError(f"max_segment_chars={self.max_segment_chars} is too small; use 20 or more.")
        compiled = re.compile("|".join(f"(?:{p})" for p in self.inline_patterns))
        object.__setattr__(self, "_regex", compiled)

    def with_patterns(self, *patterns: str) -> ProtectionRules:
        """A copy that protects ``patterns`` too (checked before the default ones).

        Raises:
            ValueError: when a pattern is not a valid regular expression or matches "".
        """
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"Invalid protection pattern {pattern!r}: {exc}") from None
            if compiled.fullmatch(""):
                raise ValueError(f"Protection pattern {pattern!r} matches the empty string; it would protect nothing.")
        return ProtectionRules(tuple(patterns) + self.inline_patterns, self.max_segment_chars)

    def find_spans(self, text: str) -> list[tuple[int, int]]:
        """Start/end offsets of the protected inline spans in ``text`` (non-overlapping)."""
        return [m.span() for m in self._regex.finditer(text) if m.end() > m.start()]


DEFAULT_RULES = ProtectionRules()


@dataclass(frozen=True)
class Segment:
    """One sentence to translate.

    Attributes:
        text: the sentence, without surrounding whitespace; never contains a newline.
        protected: inline spans that must appear verbatim in its translation.
        parts: ``(translatable, text)`` pieces of ``text`` split at the protected spans,
            used when a whole-sentence translation loses a span.
    """

    text: str
    protected: tuple[str, ...] = ()
    parts: tuple[tuple[bool, str], ...] = ()


@dataclass(frozen=True)
class Template:
    """A value split into literal pieces (``str``) and segment slots (``int`` indices)."""

    pieces: tuple[str | int, ...]
    segments: tuple[Segment, ...]

    def render(self, translations: Sequence[str]) -> str:
        """Put ``translations`` (one per segment, in order) back between the literals.

        Raises:
            ValueError: when the number of translations does not match the segments.
        """
        if len(translations) != len(self.segments):
            raise ValueError(f"Expected {len(self.segments)} translations, got {len(translations)}.")
        return "".join(p if isinstance(p, str) else translations[p] for p in self.pieces)

    def literals(self) -> list[str]:
        """The literal pieces, in order (what protection keeps byte for byte)."""
        return [p for p in self.pieces if isinstance(p, str)]


def has_letters(text: str) -> bool:
    """True if ``text`` contains at least one letter (in any alphabet)."""
    return _LETTER.search(text) is not None


# --------------------------------------------------------------------------- building


class _Builder:
    def __init__(self) -> None:
        self.pieces: list[str | int] = []
        self.segments: list[Segment] = []

    def literal(self, text: str) -> None:
        if not text:
            return
        if self.pieces and isinstance(self.pieces[-1], str):
            self.pieces[-1] += text
        else:
            self.pieces.append(text)

    def segment(self, segment: Segment) -> None:
        self.pieces.append(len(self.segments))
        self.segments.append(segment)

    def build(self) -> Template:
        return Template(tuple(self.pieces), tuple(self.segments))


def segment_text(text: str, rules: ProtectionRules = DEFAULT_RULES) -> Template:
    """Split ``text`` into literals and sentences to translate.

    ``segment_text(t).render([s.text for s in segment_text(t).segments]) == t`` holds for
    every string ``t``: nothing is added, dropped or reordered.

    Raises:
        TypeError: when ``text`` is not a string (values are never stringified).
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected a string value, got {type(text).__name__}; values are never stringified.")
    builder = _Builder()
    position = 0
    for match in CODE_BLOCK.finditer(text):
        _add_prose(text[position : match.start()], builder, rules)
        builder.literal(match.group())
        position = match.end()
    _add_prose(text[position:], builder, rules)
    return builder.build()


def _add_prose(block: str, builder: _Builder, rules: ProtectionRules) -> None:
    for index, piece in enumerate(_BLOCK_SPLIT.split(block)):
        if index % 2:  # a separator captured by the split
            builder.literal(piece)
        else:
            _add_line(piece, builder, rules)


def _add_line(line: str, builder: _Builder, rules: ProtectionRules) -> None:
    prefix = LINE_PREFIX.match(line)
    start = prefix.end() if prefix else 0
    body = line[start:]
    stripped = body.rstrip()
    builder.literal(line[:start])
    _add_sentences(stripped, builder, rules)
    builder.literal(body[len(stripped) :])


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with protected spans replaced by underscores (same length)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = "_" * (end - start)
    return "".join(chars)


def _sentence_bounds(masked: str) -> list[tuple[int, int]]:
    """(start, end) of sentences in ``masked``, whitespace between them excluded."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(masked):
        before = masked[start : match.start()]
        word = before.rsplit(None, 1)[-1].rstrip(".!?…\"')]").lower() if before.strip() else ""
        following = masked[match.end() : match.end() + 1]
        if word in _ABBREVIATIONS or (following and following.islower()):
            continue
        end = match.start() + len(match.group().rstrip())
        bounds.append((start, end))
        start = match.end()
    if start < len(masked):
        bounds.append((start, len(masked.rstrip())))
    return [(s, e) for s, e in bounds if e > s]


def _split_long(masked: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Cut ``masked[start:end]`` into pieces of at most ``limit`` chars, at spaces."""
    pieces: list[tuple[int, int]] = []
    while end - start > limit:
        window = masked[start : start + limit + 1]
        cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
        cut = cut + 1 if cut > limit // 3 else window.rfind(" ")
        if cut <= 0:  # no space in the window: cut at the next space after it
            nxt = masked.find(" ", start + limit)
            if nxt == -1 or nxt >= end:
                break
            cut = nxt - start
        pieces.append((start, start + cut))
        start += cut
        while start < end and masked[start].isspace():
            start += 1
    pieces.append((start, end))
    return pieces


def _add_sentences(body: str, builder: _Builder, rules: ProtectionRules) -> None:
    if not body:
        return
    spans = rules.find_spans(body)
    masked = _mask(body, spans)
    position = 0
    for s_start, s_end in _sentence_bounds(masked):
        for start, end in _split_long(masked, s_start, s_end, rules.max_segment_chars):
            end = start + len(body[start:end].rstrip())
            builder.literal(body[position:start])
            _add_segment(body, start, end, spans, builder)
            position = end
    builder.literal(body[position:])


def _add_segment(body: str, start: int, end: int, spans: list[tuple[int, int]], builder: _Builder) -> None:
    inner = [(max(s, start), min(e, end)) for s, e in spans if s < end and e > start]
    parts: list[tuple[bool, str]] = []
    position = start
    for s, e in inner:
        if s > position:
            parts.append((True, body[position:s]))
        parts.append((False, body[s:e]))
        position = e
    if position < end:
        parts.append((True, body[position:end]))
    if not any(translatable and has_letters(piece) for translatable, piece in parts):
        builder.literal(body[start:end])  # numbers, code, URLs only: nothing to translate
        return
    builder.segment(
        Segment(
            text=body[start:end],
            protected=tuple(piece for translatable, piece in parts if not translatable),
            parts=tuple(parts),
        )
    )


# --------------------------------------------------------------------------- checking outputs


def clean_output(text: str) -> str:
    """Normalize a model's output for one segment: one line, no outer whitespace."""
    return " ".join(text.split())


def verify_translation(segment: Segment, output: str) -> str | None:
    """Why ``output`` is not an acceptable translation of ``segment`` (None if it is).

    It must be non-empty, contain no ``<image>`` tag, code fence or line break of its
    own, and keep every protected inline span verbatim (as many times as the source).
    """
    if not output.strip():
        return "empty output"
    for token in (IMAGE_TOKEN, FENCE):
        if output.count(token) > segment.text.count(token):
            return f"output adds {token!r}"
    if "\n" in output or "\r" in output:
        return "output contains a line break"
    missing = Counter(segment.protected) - Counter({span: output.count(span) for span in set(segment.protected)})
    if missing:
        return "lost protected spans: " + ", ".join(repr(s) for s in sorted(missing))
    return None


def strip_added_markup(output: str) -> str:
    """Remove ``<image>`` tags and code fences a model invented (the template owns them)."""
    return clean_output(output.replace(IMAGE_TOKEN, " ").replace(FENCE, " "))
