"""English→Spanish translation pairs: loading, integrity checks and chat formatting.

Notebook 03 fine-tunes the same model on a *good* and a *bad* set of translations of the
same English sentences and scores both on a held-out test set.  This module:

* loads pairs from a committed JSONL file (``local:data/<file>.jsonl``, mini profile) or
  a Hub dataset with ``source``/``target`` columns (full profile) — :func:`load_pairs`;
* checks the data before anything is trained on it: no empty or duplicate pairs, the good
  and bad sets cover the same sources, and no test sentence leaks into training —
  :func:`integrity_report` / :func:`assert_clean`;
* turns pairs into the conversational *prompt/completion* examples that TRL's
  ``SFTTrainer`` understands — :func:`to_chat_example`.  Taught in notebook 03, section 2,
  where ``tokenizer.apply_chat_template`` is called in the cell; saved here because the
  configuration cell, the benchmarks and the tests reuse it.
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
        raise PairsError(
            f"No encuentro el fichero de traducciones {path}. Revisa el nombre que das en "
            'start("03_datos_buenos_vs_malos", good_dataset="local:data/<fichero>.jsonl").'
        )
    pairs: list[TranslationPair] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}, línea {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PairsError(f"{where}: JSON no válido ({exc.msg}). Corrige o borra esa línea.") from None
        if not isinstance(row, dict):
            raise PairsError(f"{where}: se esperaba un objeto con 'source' y 'target', no {type(row).__name__}.")
        pairs.append(_pair_from_row(row, default_id=f"{path.stem}-{number}", where=where))
    if not pairs:
        raise PairsError(f"{path} no tiene ningún par de traducción (líneas con 'source' y 'target').")
    return pairs


def _pair_from_row(row: dict[str, Any], *, default_id: str, where: str) -> TranslationPair:
    missing = [key for key in ("source", "target") if not isinstance(row.get(key), str)]
    if missing:
        raise PairsError(
            f"{where}: faltan los campos de texto {missing}; cada par necesita 'source' (inglés) "
            f"y 'target' (español), como texto. Columnas encontradas: {sorted(row)}."
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
            f"buenos y malos traducen frases distintas ({len(report.only_in_good)} solo en buenos, "
            f"{len(report.only_in_bad)} solo en malos): una diferencia de puntuación podría venir de las frases"
        )
    if problems:
        raise PairsError(
            "Los datos de traducción no sirven para una comparación justa:\n  - "
            + "\n  - ".join(problems)
            + '\nCorrige los ficheros de data/ (o elige otros conjuntos con start("03_datos_buenos_vs_malos", '
            + "good_dataset=..., bad_dataset=...)) y vuelve a ejecutar."
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

    Enseñado en el cuaderno 03, sección 2 (plantilla de chat).

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


def check_generation_prompt(
    build: Callable[[str], str], tokenizer: Any, pairs: Sequence[TranslationPair], system_prompt: str
) -> bool:
    """Self-check for exercise 1 of notebook 03 (guided): the text the model translates from.

    ``build(source)`` must return the chat template applied to the system + user messages
    with ``add_generation_prompt=True`` and ``tokenize=False``: the same string for every
    pair, without the translation.  Prints what is missing, in Spanish; never raises.
    """
    from utils.core.exercises import Expectation, attempt, report

    sample = list(pairs[:5])
    first, failed = attempt(build, sample[0].source)
    if failed:
        return report("prompt para traducir", [failed])
    try:
        built = [first] + [build(p.source) for p in sample[1:]]
    except Exception as exc:  # noqa: BLE001 - the learner's code may fail in any way
        return report("prompt para traducir", [Expectation(False, "la función se ejecuta", f"lanzó {exc!r}")])
    texts = all(isinstance(b, str) for b in built)

    def template(pair: TranslationPair, *, generation: bool) -> str:
        return tokenizer.apply_chat_template(
            prompt_messages(pair.source, system_prompt), tokenize=False, add_generation_prompt=generation
        )

    expected = [template(p, generation=True) for p in sample]
    without_header = [template(p, generation=False) for p in sample]
    return report(
        "prompt para traducir",
        [
            Expectation(
                texts,
                "devuelve texto (str)",
                "pasa tokenize=False a apply_chat_template: sin él devuelve los ids de los tokens",
            ),
            Expectation(
                texts and all(system_prompt in b for b in built),
                "lleva la instrucción (mensaje system con SYSTEM_PROMPT)",
                "el primer mensaje es {'role': 'system', 'content': SYSTEM_PROMPT}; sin él la plantilla pone "
                "su propio prompt por defecto",
            ),
            Expectation(
                texts and all(p.source in b for b, p in zip(built, sample)),
                "lleva la frase en inglés (mensaje user)",
                "el segundo mensaje es {'role': 'user', 'content': frase}",
            ),
            Expectation(
                texts and not any(p.target in b for b, p in zip(built, sample)),
                "no incluye la traducción",
                "al traducir no la tenemos: el prompt no lleva el mensaje assistant",
            ),
            Expectation(
                texts and all(b != w for b, w in zip(built, without_header)),
                "termina abriendo el turno del asistente",
                "pasa add_generation_prompt=True: sin la cabecera el modelo seguiría el turno del usuario",
            ),
            Expectation(
                built == expected,
                "coincide con la plantilla del modelo, carácter a carácter",
                "no añadas texto ni tokens a mano: deja que apply_chat_template lo escriba todo",
            ),
        ],
    )
