"""English→Spanish translation pairs: loading, integrity checks and chat formatting.

Notebook 03 fine-tunes the same model on a *good* and a *bad* set of translations of the
same English sentences and scores both on a held-out test set.  This module:

* loads pairs from a committed JSONL file (``local:data/<file>.jsonl``, mini profile) or
  a Hub dataset with ``source``/``target`` columns (full profile) — :func:`load_pairs`;
* checks the data before anything is trained on it: no empty or duplicate pairs, the good
  and bad sets cover the same sources, and no test sentence leaks into training —
  :func:`integrity_report` / :func:`assert_clean`;
* turns pairs into the conversational *prompt/completion* examples that TRL's
  ``SFTTrainer`` understands, so that the model's own chat template (with its special
  tokens) is applied by the tokenizer and never written by hand — :func:`to_chat_example`.
"""

from __future__ import annotations

import difflib
import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utils.core.errors import CourseError
from utils.core.paths import data_dir

Message = dict[str, str]
ChatExample = dict[str, list[Message]]


@dataclass(frozen=True)
class TranslationPair:
    """One English sentence and its Spanish translation."""

    id: str
    source: str  # English
    target: str  # Spanish


class PairsError(CourseError, ValueError):
    """Translation data that cannot be used; the message says where and how to fix it."""


# --------------------------------------------------------------------------- loading


def read_pairs_jsonl(path: Path) -> list[TranslationPair]:
    """Read ``{"id", "source", "target"}`` lines from a JSONL file.

    Lines without an ``id`` get ``<file stem>-<line number>``.

    Raises:
        PairsError: for a missing file, invalid JSON or a line without text, naming the
            file and line.
    """
    if not path.is_file():
        raise PairsError(f"Translation file not found: {path}. Check the name in utils/settings.py.")
    pairs: list[TranslationPair] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PairsError(f"{where}: invalid JSON ({exc.msg}). Fix or delete that line.") from None
        if not isinstance(row, dict):
            raise PairsError(f"{where}: expected an object with 'source' and 'target', got {type(row).__name__}.")
        pairs.append(_pair_from_row(row, default_id=f"{path.stem}-{number}", where=where))
    if not pairs:
        raise PairsError(f"{path} holds no translation pairs.")
    return pairs


def _pair_from_row(row: dict[str, Any], *, default_id: str, where: str) -> TranslationPair:
    missing = [key for key in ("source", "target") if not isinstance(row.get(key), str)]
    if missing:
        raise PairsError(
            f"{where}: missing text field(s) {missing}; every pair needs a 'source' (English) "
            f"and a 'target' (Spanish) string. Columns found: {sorted(row)}."
        )
    return TranslationPair(id=str(row.get("id") or default_id), source=row["source"], target=row["target"])


def load_pairs(spec: str, *, split: str = "train", limit: int = 0) -> list[TranslationPair]:
    """Load translation pairs named in the settings.

    ``local:data/<file>.jsonl`` reads a committed file (mini); any other value is a Hugging
    Face Hub dataset id with ``source`` and ``target`` columns (full).  ``limit`` > 0 keeps
    the first ``limit`` pairs.

    Raises:
        PairsError: when the file or the columns are not what is expected.
    """
    if spec.startswith("local:"):
        relative = spec.removeprefix("local:")
        relative = relative.removeprefix("data/")
        pairs = read_pairs_jsonl(data_dir() / relative)
    else:
        from datasets import load_dataset

        dataset = load_dataset(spec, split=split)
        pairs = [
            _pair_from_row(dict(row), default_id=f"{spec}-{i}", where=f"{spec} ({split}), row {i}")
            for i, row in enumerate(dataset)
        ]
    return pairs[:limit] if limit > 0 else pairs


# --------------------------------------------------------------------------- integrity


def normalize(text: str) -> str:
    """Lower-case, accent-preserving, punctuation- and space-insensitive form for comparisons."""
    text = unicodedata.normalize("NFC", text).casefold()
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def find_empty(pairs: Iterable[TranslationPair]) -> list[str]:
    """Ids of pairs whose source or target is blank."""
    return [p.id for p in pairs if not p.source.strip() or not p.target.strip()]


def find_duplicates(pairs: Iterable[TranslationPair]) -> list[str]:
    """Ids of pairs whose (normalized) source appears earlier in the list, and repeated ids."""
    seen_sources: set[str] = set()
    seen_ids: set[str] = set()
    duplicates: list[str] = []
    for pair in pairs:
        key = normalize(pair.source)
        if key in seen_sources or pair.id in seen_ids:
            duplicates.append(pair.id)
        seen_sources.add(key)
        seen_ids.add(pair.id)
    return duplicates


def find_leaks(
    train: Iterable[TranslationPair], test: Iterable[TranslationPair], *, similarity: float = 0.9
) -> list[tuple[str, str]]:
    """``(test id, train id)`` for every test pair whose source or target is in training.

    Two sentences match when their normalized forms are equal or at least ``similarity``
    alike (``difflib`` ratio), which also catches copies that differ in a word or a comma.
    """
    train = list(train)
    leaks: list[tuple[str, str]] = []
    for t in test:
        for p in train:
            if _alike(t.source, p.source, similarity) or _alike(t.target, p.target, similarity):
                leaks.append((t.id, p.id))
                break
    return leaks


def _alike(a: str, b: str, similarity: float) -> bool:
    a, b = normalize(a), normalize(b)
    if a == b:
        return True
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return (
        matcher.real_quick_ratio() >= similarity
        and matcher.quick_ratio() >= similarity
        and matcher.ratio() >= similarity
    )


#: Kinds of language problem :func:`find_language_problems` reports (learner-facing, Spanish).
UNTRANSLATED = "sin traducir"
SWAPPED = "invertido (fuente en español, traducción en inglés)"
OTHER_LANGUAGE = "otro idioma"


@dataclass(frozen=True)
class LanguageFlag:
    """A pair whose languages are not English → Spanish."""

    id: str
    kind: str  # UNTRANSLATED, SWAPPED or OTHER_LANGUAGE
    detail: str  # what the detector saw, e.g. "destino: en (0.93)"

    def __str__(self) -> str:
        return f"{self.id} ({self.kind}: {self.detail})"


def find_language_problems(
    pairs: Iterable[TranslationPair], *, min_score: float = 0.5, other_min_score: float = 0.8
) -> list[LanguageFlag]:
    """Pairs that are untranslated, swapped or translated into another language.

    * **untranslated**: the target repeats the source, or is English;
    * **swapped**: the source is Spanish and the target English;
    * **other language**: the target is confidently neither Spanish nor English
      (``other_min_score``, higher than ``min_score``: to the detector, clumsy or quoted
      Spanish can look Portuguese at 0.7, e.g. a FLORES sentence in quotes; Italian with
      0.75 is missed, French, Portuguese or German at 0.97+ are caught).

    Languages come from :func:`utils.core.language.detect_language` (fastText *lite*, offline).
    Texts too short to tell (fewer than ``MIN_LETTERS`` letters) are not judged at all: a
    name or a number is the same in both languages (Tatoeba has «Stephen» → «Stephen»).
    """
    from utils.core.language import MIN_LETTERS, detect_language

    flags: list[LanguageFlag] = []
    for pair in pairs:
        if not pair.source.strip() or not pair.target.strip():
            continue  # find_empty reports those
        if sum(ch.isalpha() for ch in pair.target) < MIN_LETTERS:
            continue
        if normalize(pair.source) == normalize(pair.target):
            flags.append(LanguageFlag(pair.id, UNTRANSLATED, "la traducción repite la frase original"))
            continue
        src, tgt = detect_language(pair.source), detect_language(pair.target)
        seen = f"fuente: {src.lang} ({src.score:.2f}), traducción: {tgt.lang} ({tgt.score:.2f})"
        target_english = tgt.lang == "en" and tgt.score >= min_score
        if target_english and src.lang == "es" and src.score >= min_score:
            flags.append(LanguageFlag(pair.id, SWAPPED, seen))
        elif target_english:
            flags.append(LanguageFlag(pair.id, UNTRANSLATED, seen))
        elif tgt.lang not in ("es", "en", "und") and tgt.score >= other_min_score:
            flags.append(LanguageFlag(pair.id, OTHER_LANGUAGE, seen))
    return flags


@dataclass
class IntegrityReport:
    """What :func:`integrity_report` found; ``problems`` is empty when the data are clean."""

    sizes: dict[str, int]
    only_in_good: list[str] = field(default_factory=list)  # sources missing from the bad set
    only_in_bad: list[str] = field(default_factory=list)  # sources missing from the good set
    identical_targets: int = 0  # pairs where the good and bad translations are the same
    language_flags: dict[str, list[LanguageFlag]] = field(default_factory=dict)  # per set
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # shown, but training may go on

    @property
    def same_sources(self) -> bool:
        return not self.only_in_good and not self.only_in_bad

    def summary(self) -> str:
        """Spanish, human-readable summary for the notebook."""
        sizes = ", ".join(f"{name}: {n}" for name, n in self.sizes.items())
        lines = [f"Pares por conjunto → {sizes}"]
        lines.append(
            "✅ Buenos y malos traducen las mismas frases en inglés."
            if self.same_sources
            else f"⚠️ Fuentes distintas: {len(self.only_in_good)} solo en buenos, {len(self.only_in_bad)} solo en malos."
        )
        lines.append(f"Pares con la misma traducción en buenos y malos: {self.identical_targets}")
        lines += [f"⚠️ {w}" for w in self.warnings]
        lines += [f"❌ {p}" for p in self.problems] or [
            "✅ Sin pares vacíos, duplicados, sin traducir, invertidos ni en otro idioma, y sin fugas del test."
        ]
        return "\n".join(lines)


def integrity_report(
    good: Sequence[TranslationPair], bad: Sequence[TranslationPair], test: Sequence[TranslationPair]
) -> IntegrityReport:
    """Check the three sets: empties, duplicates, languages, same sources in good/bad, test leakage.

    Pairs that are untranslated, swapped or in another language (:func:`find_language_problems`)
    are problems in the good and test sets; in the bad set, whose translations are meant to be
    wrong, they are warnings (such pairs teach nothing about realistic errors, but do not make
    the comparison unfair).
    """
    report = IntegrityReport(sizes={"buenos": len(good), "malos": len(bad), "test": len(test)})
    for name, pairs in (("buenos", good), ("malos", bad), ("test", test)):
        if empty := find_empty(pairs):
            report.problems.append(f"{name}: pares vacíos {empty[:5]}")
        if dups := find_duplicates(pairs):
            report.problems.append(f"{name}: pares duplicados {dups[:5]}")
        if flags := find_language_problems(pairs):
            report.language_flags[name] = flags
            message = f"{name}: {len(flags)} pares con el idioma mal: " + "; ".join(map(str, flags[:5]))
            (report.warnings if name == "malos" else report.problems).append(message)
    good_sources = Counter(normalize(p.source) for p in good)
    bad_sources = Counter(normalize(p.source) for p in bad)
    report.only_in_good = sorted((good_sources - bad_sources).elements())
    report.only_in_bad = sorted((bad_sources - good_sources).elements())
    bad_by_source = {normalize(p.source): p.target for p in bad}
    report.identical_targets = sum(
        1 for p in good if normalize(bad_by_source.get(normalize(p.source), "")) == normalize(p.target)
    )
    for name, train in (("buenos", good), ("malos", bad)):
        if leaks := find_leaks(train, test):
            report.problems.append(f"fuga del test en {name}: {leaks[:5]} (test, entrenamiento)")
    return report


def assert_clean(report: IntegrityReport, *, require_same_sources: bool = True) -> None:
    """Raise :class:`PairsError` if ``report`` found problems.

    Raises:
        PairsError: listing every problem and how to fix it.
    """
    problems = list(report.problems)
    if require_same_sources and not report.same_sources:
        problems.append(
            f"good and bad sets translate different sources ({len(report.only_in_good)} only in good, "
            f"{len(report.only_in_bad)} only in bad), so a score gap could come from the sources"
        )
    if problems:
        raise PairsError(
            "The translation data are not fit for a fair comparison:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the files in data/ (or choose other datasets in utils/settings.py) and run again."
        )


def split_validation(
    pairs: Sequence[TranslationPair], size: int, *, seed: int = 0
) -> tuple[list[TranslationPair], list[TranslationPair]]:
    """Split ``pairs`` into (train, validation) with ``size`` validation pairs chosen at random.

    Used for model selection without touching the test set.  Passing the same ``seed``
    to the good and bad sets (which share their ids) holds out the same sources in both.
    """
    if not 0 < size < len(pairs):
        raise ValueError(f"validation size must be between 1 and {len(pairs) - 1}, got {size}")
    ids = sorted(p.id for p in pairs)
    held = set(random.Random(seed).sample(ids, size))
    return [p for p in pairs if p.id not in held], [p for p in pairs if p.id in held]


# --------------------------------------------------------------------------- chat format


def prompt_messages(source: str, system_prompt: str) -> list[Message]:
    """The conversation the model sees before answering: the instruction and the English text."""
    return [{"role": "system", "content": system_prompt}, {"role": "user", "content": source}]


def to_chat_example(pair: TranslationPair, system_prompt: str) -> ChatExample:
    """A conversational prompt/completion example for TRL's ``SFTTrainer``.

    No special tokens are written here: the tokenizer's chat template adds them (and the
    end-of-turn token the model must learn to emit).  Because the example has a separate
    ``completion``, SFTTrainer computes the loss on the translation only.
    """
    return {
        "prompt": prompt_messages(pair.source, system_prompt),
        "completion": [{"role": "assistant", "content": pair.target}],
    }


def to_chat_dataset(pairs: Sequence[TranslationPair], system_prompt: str):
    """A ``datasets.Dataset`` of :func:`to_chat_example` rows (plus the pair id)."""
    from datasets import Dataset

    return Dataset.from_list([{"id": p.id, **to_chat_example(p, system_prompt)} for p in pairs])


def render_chat(tokenizer: Any, example: ChatExample) -> str:
    """The exact training text of ``example`` after the model's chat template."""
    return tokenizer.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)


def chat_token_lengths(tokenizer: Any, examples: Iterable[ChatExample]) -> list[int]:
    """Number of tokens of each rendered example (what ``max_length`` must cover).

    ``add_special_tokens=False``: the template already wrote the special tokens; letting
    the tokenizer add a BOS again would count (and train on) a duplicate.
    """
    return [
        len(tokenizer(render_chat(tokenizer, example), add_special_tokens=False)["input_ids"]) for example in examples
    ]


def special_tokens_in_text(tokenizer: Any, text: str) -> list[str]:
    """Special tokens of ``tokenizer`` written literally inside ``text``."""
    specials = {t for t in tokenizer.all_special_tokens if t}
    specials |= {t.content for t in getattr(tokenizer, "added_tokens_decoder", {}).values() if t.special}
    return sorted(t for t in specials if t in text)


def check_chat_example(
    build: Callable[[str, str], ChatExample],
    tokenizer: Any,
    pairs: Sequence[TranslationPair],
    system_prompt: str,
) -> bool:
    """Self-check for the formatting exercise of notebook 03.

    ``build(source, target)`` must return the same conversation as :func:`to_chat_example`
    for every pair: a system + user prompt, one assistant completion with the translation
    as is, and no special tokens typed by hand (the chat template adds them).
    """
    from utils.core.exercises import Expectation, report

    sample = list(pairs[:5])
    try:
        built = [build(p.source, p.target) for p in sample]
    except Exception as exc:  # noqa: BLE001 - the learner's code may fail in any way
        return report("formato de chat", [Expectation(False, "la función se ejecuta", f"lanzó {exc!r}")])
    expected = [to_chat_example(p, system_prompt) for p in sample]
    shaped = all(isinstance(b, dict) and set(b) == {"prompt", "completion"} for b in built)
    roles_ok = shaped and all(
        [m.get("role") for m in b["prompt"]] == ["system", "user"]
        and [m.get("role") for m in b["completion"]] == ["assistant"]
        for b in built
    )
    typed_specials = sorted(
        {
            tok
            for b in built
            if shaped
            for m in b["prompt"] + b["completion"]
            for tok in special_tokens_in_text(tokenizer, str(m.get("content", "")))
        }
    )
    completion_ok = roles_ok and all(b["completion"][0]["content"] == p.target for b, p in zip(built, sample))
    prompt_ok = roles_ok and all(
        b["prompt"][1]["content"] == p.source and b["prompt"][0]["content"] == system_prompt
        for b, p in zip(built, sample)
    )
    same_tokens = roles_ok and all(
        render_chat(tokenizer, b) == render_chat(tokenizer, e) for b, e in zip(built, expected)
    )
    return report(
        "formato de chat",
        [
            Expectation(
                shaped,
                "devuelve un dict con las claves 'prompt' y 'completion'",
                "SFTTrainer reconoce el formato prompt/completion por esas dos claves",
            ),
            Expectation(
                roles_ok,
                "el prompt tiene los roles system y user; la respuesta, un mensaje assistant",
                "mira el orden y los nombres de los roles",
            ),
            Expectation(
                not typed_specials,
                "no escribe tokens especiales a mano",
                f"quita {typed_specials}: la plantilla de chat ya los añade y quedarían duplicados",
            ),
            Expectation(
                prompt_ok,
                "el prompt lleva la instrucción y la frase en inglés sin cambios",
                "usa SYSTEM_PROMPT como system y la frase original como user",
            ),
            Expectation(
                completion_ok,
                "la respuesta es la traducción tal cual",
                "no añadas espacios, comillas ni prefijos a la traducción",
            ),
            Expectation(
                same_tokens,
                "el texto renderizado con la plantilla coincide con el del curso",
                "compara render_chat(tokenizer, tu_ejemplo) con el del ejemplo de referencia",
            ),
        ],
    )
