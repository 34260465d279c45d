"""Visual question answering data for notebook 04: one CSV format for both profiles.

Both profiles end up with the same files, so the rest of the notebook is one code path::

    <folder>/images/*.png|jpg
    <folder>/train.csv   columns: image, question, answer, qtype
    <folder>/test.csv

* mini — :func:`generate_synthetic_vqa` draws simple scenes with PIL (large coloured
  shapes on a 2×2 grid) and writes Spanish questions about colour, shape, count and
  position.  It is deterministic: the same seed gives byte-identical files.
* full — :func:`export_hub_vqa` streams a VQAv2-style dataset from the Hub and writes a
  subset to the same layout (images split by image id, so no image is in both splits).

Then :func:`csv_to_llava_rows` turns CSV rows into the conversation rows of the original
LLaVA repository (``{"id", "image", "conversations": [{"from": "human", ...}, ...]}``)
and :func:`llava_row_to_messages` into the chat messages that a transformers processor's
chat template expects.
"""

from __future__ import annotations

import csv
import io
import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utils.core.errors import CourseError

#: The columns every VQA CSV of the course has, in order.
CSV_COLUMNS: tuple[str, ...] = ("image", "question", "answer", "qtype")
#: The image placeholder of the LLaVA conversation format.
IMAGE_PLACEHOLDER = "<image>"

# --------------------------------------------------------------------------- vocabulary

#: Colour name → RGB (saturated, far apart, so that even a random vision tower separates them).
COLOURS: dict[str, tuple[int, int, int]] = {
    "rojo": (215, 35, 35),
    "verde": (35, 160, 50),
    "azul": (40, 70, 215),
    "amarillo": (235, 200, 20),
}
SHAPES: tuple[str, ...] = ("círculo", "cuadrado", "triángulo")
COUNT_WORDS: tuple[str, ...] = ("una", "dos", "tres", "cuatro")
#: Grid cell (row, col) → how the question names it.
CELLS: dict[tuple[int, int], str] = {
    (0, 0): "arriba a la izquierda",
    (0, 1): "arriba a la derecha",
    (1, 0): "abajo a la izquierda",
    (1, 1): "abajo a la derecha",
}
#: Question types of the synthetic set, in the order they are generated.
QUESTION_TYPES: tuple[str, ...] = ("color", "forma", "conteo", "posicion")


class VqaDataError(CourseError, ValueError):
    """A VQA file or row is malformed; the message says which one and how to fix it."""


@dataclass(frozen=True)
class VqaRow:
    """One question about one image (a row of ``train.csv`` / ``test.csv``)."""

    image: str  # file name relative to the CSV's folder
    question: str
    answer: str
    qtype: str  # question type, for per-type accuracy


@dataclass(frozen=True)
class Scene:
    """What a synthetic image shows: ``count`` equal shapes in distinct grid cells."""

    shape: str
    colour: str
    cells: tuple[tuple[int, int], ...]

    @property
    def count(self) -> int:
        return len(self.cells)


# --------------------------------------------------------------------------- drawing


def draw_scene(scene: Scene, image_size: int, rng: random.Random):
    """Draw ``scene`` on a light background; return a PIL RGB image.

    Each shape fills 70–90 % of its grid cell (35–45 % of the image side), so that it
    lies inside one patch of the tiny vision tower (2×2 patches of 32 px).
    """
    from PIL import Image, ImageDraw

    grey = rng.randint(225, 250)
    image = Image.new("RGB", (image_size, image_size), (grey, grey, grey))
    draw = ImageDraw.Draw(image)
    cell = image_size / 2
    rgb = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in COLOURS[scene.colour])
    for row, col in scene.cells:
        side = cell * rng.uniform(0.70, 0.90)
        x0 = col * cell + rng.uniform(0, cell - side)
        y0 = row * cell + rng.uniform(0, cell - side)
        box = (x0, y0, x0 + side, y0 + side)
        if scene.shape == "círculo":
            draw.ellipse(box, fill=rgb)
        elif scene.shape == "cuadrado":
            draw.rectangle(box, fill=rgb)
        elif scene.shape == "triángulo":
            draw.polygon([(x0 + side / 2, y0), (x0, y0 + side), (x0 + side, y0 + side)], fill=rgb)
        else:
            raise ValueError(f"Unknown shape {scene.shape!r}; use one of {SHAPES}.")
    return image


def _question_for(scene: Scene, qtype: str, rng: random.Random) -> tuple[str, str]:
    """A Spanish question about ``scene`` of type ``qtype`` and its answer."""
    plural = scene.count > 1
    if qtype == "color":
        verb = "son las figuras" if plural else "es la figura"
        return f"¿De qué color {verb}?", scene.colour
    if qtype == "forma":
        verb = "tienen las figuras" if plural else "tiene la figura"
        return f"¿Qué forma {verb}?", scene.shape
    if qtype == "conteo":
        return "¿Cuántas figuras hay?", COUNT_WORDS[scene.count - 1]
    if qtype == "posicion":
        empty = [c for c in CELLS if c not in scene.cells]
        ask_empty = bool(empty) and rng.random() < 0.5
        cell = rng.choice(empty) if ask_empty else rng.choice(scene.cells)
        return f"¿Hay alguna figura {CELLS[cell]}?", "no" if ask_empty else "sí"
    raise ValueError(f"Unknown question type {qtype!r}; use one of {QUESTION_TYPES}.")


def random_scene(rng: random.Random) -> Scene:
    """A scene with 1–4 shapes of one kind and one colour in distinct cells."""
    count = rng.randint(1, len(CELLS))
    cells = tuple(sorted(rng.sample(sorted(CELLS), count)))
    return Scene(shape=rng.choice(SHAPES), colour=rng.choice(sorted(COLOURS)), cells=cells)


#: The question of the caption rows (LLaVA-1.5's first stage: image → description).
CAPTION_QUESTION = "Describe la imagen."
CAPTION_QTYPE = "descripcion"


def describe_scene(scene: Scene) -> str:
    """A Spanish caption holding every answer the four question types ask about.

    >>> describe_scene(Scene("círculo", "rojo", ((0, 0), (1, 1))))
    'dos figuras de color rojo con forma de círculo: arriba a la izquierda y abajo a la derecha'
    """
    cells = [CELLS[c] for c in scene.cells]
    where = cells[0] if len(cells) == 1 else ", ".join(cells[:-1]) + " y " + cells[-1]
    noun = "figuras" if scene.count > 1 else "figura"
    return f"{COUNT_WORDS[scene.count - 1]} {noun} de color {scene.colour} con forma de {scene.shape}: {where}"


def _synthetic(n: int, seed: int, image_size: int, prefix: str) -> Iterator[tuple[VqaRow, Any, Scene]]:
    rng = random.Random(seed)
    for i in range(n):
        scene = random_scene(rng)
        qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        question, answer = _question_for(scene, qtype, rng)
        image = draw_scene(scene, image_size, rng)
        yield VqaRow(f"images/{prefix}_{i:04d}.png", question, answer, qtype), image, scene


def synthetic_rows(n: int, *, seed: int, image_size: int, prefix: str) -> Iterator[tuple[VqaRow, Any]]:
    """Yield ``n`` (row, PIL image) pairs; question types take turns, so they are balanced."""
    for row, image, _ in _synthetic(n, seed, image_size, prefix):
        yield row, image


def generate_synthetic_vqa(
    folder: Path, *, train_size: int, test_size: int, image_size: int = 64, seed: int = 42
) -> Path:
    """Write the synthetic Spanish VQA set (images + ``train.csv`` + ``test.csv``) to ``folder``.

    Deterministic: the same arguments give byte-identical files.  Train and test use
    different seeds, so no test image is a copy of a training image.  Returns ``folder``.
    """
    if train_size < 1 or test_size < 1:
        raise VqaDataError(f"train_size y test_size deben ser ≥ 1 (valen {train_size} y {test_size}).")
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for split, n, split_seed in (("train", train_size, seed), ("test", test_size, seed + 1_000_003)):
        rows, captions = [], []
        for row, image, scene in _synthetic(n, split_seed, image_size, split):
            image.save(folder / row.image, format="PNG", optimize=False)
            rows.append(row)
            captions.append(VqaRow(row.image, CAPTION_QUESTION, describe_scene(scene), CAPTION_QTYPE))
        write_csv(folder / f"{split}.csv", rows)
        if split == "train":  # the alignment stage's image → description rows (same images)
            write_csv(folder / "captions.csv", captions)
    return folder


# --------------------------------------------------------------------------- CSV


def write_csv(path: Path, rows: Iterable[VqaRow]) -> Path:
    """Write rows to ``path`` (UTF-8, header :data:`CSV_COLUMNS`, ``\\n`` line ends)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow([row.image, row.question, row.answer, row.qtype])
    return path


def _decode_csv(path: Path, data: bytes) -> str:
    """The text of a CSV file: UTF-8, with or without a BOM (Excel writes one).

    Raises:
        VqaDataError: for UTF-16 or any other non-UTF-8 bytes, naming the line.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise VqaDataError(
            f"{path} está en UTF-16 (u otra codificación de dos bytes), no en UTF-8. Guárdalo como "
            "«CSV UTF-8» (Excel: Guardar como → CSV UTF-8; LibreOffice: juego de caracteres Unicode (UTF-8))."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise VqaDataError(
            f"{path}:{line}: el byte {data[exc.start : exc.start + 1]!r} no es UTF-8 (¿un archivo en latin-1 o "
            "Windows-1252?). Guárdalo como «CSV UTF-8», o conviértelo con "
            f"`iconv -f latin1 -t utf-8 {path.name} > nuevo.csv`."
        ) from None


def _image_inside(path: Path, line: int, image: str) -> Path:
    """The image file of a CSV row, which must lie under the CSV's folder.

    Raises:
        VqaDataError: for an absolute path or one that leaves the folder (``../``, links).
    """
    root = path.parent.resolve()
    target = (root / image).resolve()
    if Path(image).is_absolute() or not target.is_relative_to(root):
        raise VqaDataError(
            f"{path}:{line}: la imagen {image!r} está fuera de la carpeta del CSV ({root}). Las rutas de "
            "imagen son relativas a esa carpeta y no pueden salir de ella (ni absolutas ni con «..»): "
            "copia la imagen dentro, p. ej. en images/."
        )
    return target


def _check_image(path: Path, line: int, image: str, file: Path) -> None:
    """Open the image now, so a missing or broken file fails at load time, not mid-training."""
    from PIL import Image

    if not file.is_file():
        raise VqaDataError(
            f"{path}:{line}: no se encuentra la imagen {image!r} en {path.parent}; las rutas de imagen son "
            "relativas a la carpeta del CSV."
        )
    try:
        with Image.open(file) as opened:
            opened.verify()
    except Exception as exc:  # noqa: BLE001 - PIL raises UnidentifiedImageError, OSError, SyntaxError…
        raise VqaDataError(
            f"{path}:{line}: {image!r} no es una imagen legible ({type(exc).__name__}: {exc}). "
            "Sustitúyela o borra la línea."
        ) from None


def read_csv(path: Path, *, check_images: bool = True) -> list[VqaRow]:
    """Read a VQA CSV, checking encoding, columns, empty cells and images.

    Accepts UTF-8 with or without BOM.  Every image path must stay inside the CSV's
    folder; with ``check_images`` each image is opened (and verified) now.

    Raises:
        VqaDataError: naming the file, the line and what to fix.
    """
    path = Path(path)
    if not path.is_file():
        raise VqaDataError(f"{path} no existe. Genera o exporta antes el conjunto de datos.")
    text = _decode_csv(path, path.read_bytes())
    rows: list[VqaRow] = []
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    done = 0  # last line of the last complete record: a broken one starts right after
    try:
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        done = reader.line_num
        if missing:
            raise VqaDataError(
                f"{path}: faltan las columnas {missing}; la cabecera debe ser {','.join(CSV_COLUMNS)} "
                f"(encontrada: {reader.fieldnames})."
            )
        for record in reader:
            line = reader.line_num
            empty = [c for c in CSV_COLUMNS if not (record.get(c) or "").strip()]
            if empty:
                raise VqaDataError(f"{path}:{line}: celdas vacías {empty}; rellénalas o borra la línea.")
            row = VqaRow(*(record[c].strip() for c in CSV_COLUMNS))
            file = _image_inside(path, line, row.image)
            if check_images:
                _check_image(path, line, row.image, file)
            rows.append(row)
            done = line
    except csv.Error as exc:
        raise VqaDataError(
            f"{path}:{done + 1}: CSV mal formado ({exc}); suele ser unas comillas sin cerrar. "
            'Cierra las comillas de esa celda (o duplícalas, "", si forman parte del texto).'
        ) from None
    if not rows:
        raise VqaDataError(f"{path} tiene cabecera pero ninguna fila.")
    return rows


# --------------------------------------------------------------------------- conversations


def csv_to_llava_rows(rows: Sequence[VqaRow], instruction: str = "") -> list[dict[str, Any]]:
    """CSV rows → conversation rows in the original LLaVA repository's JSON format.

    ``instruction`` is appended to each question on a new line (LLaVA-1.5 uses
    "Answer the question using a single word or phrase." for short-answer VQA).

    >>> csv_to_llava_rows([VqaRow("images/a.png", "¿Color?", "rojo", "color")])[0]["conversations"]
    [{'from': 'human', 'value': '<image>\\n¿Color?'}, {'from': 'gpt', 'value': 'rojo'}]
    """
    out = []
    for i, row in enumerate(rows):
        question = f"{row.question}\n{instruction}" if instruction else row.question
        out.append(
            {
                "id": f"{i:06d}",
                "image": row.image,
                "qtype": row.qtype,
                "conversations": [
                    {"from": "human", "value": f"{IMAGE_PLACEHOLDER}\n{question}"},
                    {"from": "gpt", "value": row.answer},
                ],
            }
        )
    return out


_ROLES = {"human": "user", "gpt": "assistant"}


def llava_row_to_messages(row: Mapping[str, Any], *, with_answer: bool = True) -> list[dict[str, Any]]:
    """A LLaVA conversation row → chat messages for ``processor.apply_chat_template``.

    The ``<image>`` placeholder becomes a ``{"type": "image"}`` content item, which the
    processor's chat template renders as its own image token; ``with_answer=False`` drops
    the final assistant turn (the prompt used for generation).

    Raises:
        VqaDataError: for a row without exactly one ``<image>`` in the first human turn.
    """
    turns = list(row.get("conversations", []))
    if not turns or turns[0].get("from") != "human":
        raise VqaDataError(f"Fila {row.get('id')!r}: el primer turno debe ser de 'human'.")
    if turns[0]["value"].count(IMAGE_PLACEHOLDER) != 1:
        raise VqaDataError(
            f"Fila {row.get('id')!r}: el primer turno 'human' debe contener exactamente un {IMAGE_PLACEHOLDER} "
            f"(tiene {turns[0]['value'].count(IMAGE_PLACEHOLDER)})."
        )
    if not with_answer and turns[-1].get("from") == "gpt":
        turns = turns[:-1]
    messages = []
    for turn in turns:
        role = _ROLES.get(turn.get("from", ""))
        if role is None:
            raise VqaDataError(
                f"Fila {row.get('id')!r}: interlocutor desconocido {turn.get('from')!r} (usa human o gpt)."
            )
        text = turn["value"]
        content: list[dict[str, str]] = []
        if IMAGE_PLACEHOLDER in text:
            before, after = text.split(IMAGE_PLACEHOLDER, 1)
            if before.strip():
                content.append({"type": "text", "text": before.strip()})
            content.append({"type": "image"})
            text = after.lstrip("\n")
        if text:
            content.append({"type": "text", "text": text})
        messages.append({"role": role, "content": content})
    return messages


# --------------------------------------------------------------------------- scoring


def normalize_answer(text: str) -> str:
    """Lower-case, drop accents, punctuation and extra spaces; keep the first line.

    >>> normalize_answer("  Sí.\\nPorque...")
    'si'
    """
    first = text.strip().split("\n", 1)[0]
    decomposed = unicodedata.normalize("NFKD", first.lower())
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", no_accents)).strip()


@dataclass(frozen=True)
class Accuracy:
    """Exact-match accuracy overall and per question type."""

    overall: float
    per_type: dict[str, float]
    n: int
    n_per_type: dict[str, int]


def exact_match_accuracy(references: Sequence[str], predictions: Sequence[str], qtypes: Sequence[str]) -> Accuracy:
    """Share of predictions equal to their reference after :func:`normalize_answer`."""
    if not (len(references) == len(predictions) == len(qtypes)):
        raise ValueError(
            f"Lengths differ: {len(references)} references, {len(predictions)} predictions, {len(qtypes)} types."
        )
    if not references:
        raise ValueError("Nothing to score: the list of references is empty.")
    hits: dict[str, list[bool]] = defaultdict(list)
    for ref, pred, qtype in zip(references, predictions, qtypes):
        hits[qtype].append(normalize_answer(ref) == normalize_answer(pred))
    every = [h for values in hits.values() for h in values]
    return Accuracy(
        overall=sum(every) / len(every),
        per_type={t: sum(v) / len(v) for t, v in sorted(hits.items())},
        n=len(every),
        n_per_type={t: len(v) for t, v in sorted(hits.items())},
    )


def majority_answers(rows: Sequence[VqaRow]) -> dict[str, str]:
    """The most frequent (normalized) training answer per question type (ties: alphabetical)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts[row.qtype][normalize_answer(row.answer)] += 1
    return {t: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for t, c in sorted(counts.items())}


def majority_predictions(train: Sequence[VqaRow], test: Sequence[VqaRow]) -> list[str]:
    """Baseline predictions: each test question gets its type's majority training answer.

    A type never seen in training gets the overall most frequent answer.
    """
    by_type = majority_answers(train)
    overall = Counter(normalize_answer(r.answer) for r in train).most_common(1)[0][0]
    return [by_type.get(row.qtype, overall) for row in test]


#: Exercise 2's fixed case: (reference, prediction, qtype).  The shape errors, normalized:
#: (triangulo → cuadrado) ×3, (circulo → cuadrado) ×2, (cuadrado → circulo) ×1; «Círculo.» and
#: «circulo» are the same answer; colour errors must not be counted for "forma".
ERRORS_CASE: tuple[tuple[str, str, str], ...] = (
    ("triángulo", "cuadrado", "forma"),
    ("triángulo", "Cuadrado", "forma"),
    ("triángulo", "cuadrado.", "forma"),
    ("círculo", "cuadrado", "forma"),
    ("círculo", "cuadrado", "forma"),
    ("cuadrado", "círculo", "forma"),
    ("círculo", "Círculo.", "forma"),
    ("cuadrado", "cuadrado", "forma"),
    ("rojo", "azul", "color"),
    ("rojo", "azul", "color"),
    ("rojo", "azul", "color"),
    ("rojo", "azul", "color"),
)


def check_frequent_errors(function: Any) -> bool:
    """Self-check of exercise 2: ``function(references, predictions, qtypes, qtype, top=3)``
    must return the ``top`` most frequent ``((reference, prediction), count)`` errors of
    ``qtype``, compared after :func:`normalize_answer`."""
    from utils.core.exercises import Expectation, attempt, report

    refs, preds, types = (list(column) for column in zip(*ERRORS_CASE))
    value, stub = attempt(function, refs, preds, types, "forma", top=2)
    if stub is not None:
        return report("errores más frecuentes", [stub])
    try:
        got = [(tuple(pair), int(count)) for pair, count in value]
    except (TypeError, ValueError):
        got = None  # not a list of ((reference, prediction), count)
    errors = Counter(
        (normalize_answer(r), normalize_answer(p))
        for r, p, t in ERRORS_CASE
        if t == "forma" and normalize_answer(r) != normalize_answer(p)
    )
    truth = errors.most_common(2)
    pairs, counts = ([p for p, _ in got], [c for _, c in got]) if got is not None else ([], [])
    return report(
        "errores más frecuentes",
        [
            Expectation(
                got is not None and len(got) == 2,
                f"devuelve una lista de top=2 pares: {value!r}",
                "devuelve una lista de ((correcta, predicha), veces), como Counter.most_common(top)",
            ),
            Expectation(
                got is not None and ("rojo", "azul") not in pairs,
                "solo cuenta las preguntas del tipo pedido",
                "filtra por qtype: los errores de color no son de forma",
            ),
            Expectation(
                got is not None and all(len(p) == 2 and p[0] != p[1] for p in pairs),
                "no cuenta los aciertos como errores",
                "compara las respuestas normalizadas: «Círculo.» y «círculo» son la misma respuesta",
            ),
            Expectation(
                got == truth,
                "los más frecuentes, normalizados y en orden",
                "normaliza con normalize_answer antes de contar y ordena de más a menos veces",
            ),
            Expectation(
                got is not None and counts == sorted(counts, reverse=True),
                "de más a menos frecuente",
                "ordena por veces",
            ),
        ],
    )


# --------------------------------------------------------------------------- full profile


@dataclass(frozen=True)
class HubColumns:
    """Which columns of a Hub VQA dataset hold what (VQAv2 names by default)."""

    image: str = "image"
    question: str = "question"
    answer: str = "multiple_choice_answer"
    qtype: str = "answer_type"
    image_id: str = "image_id"


def split_records_by_image(
    records: Iterable[Mapping[str, Any]], *, train_size: int, test_size: int, columns: HubColumns = HubColumns()
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """Fill train then test from ``records`` keeping every image in one split only.

    VQAv2 asks several questions about each image; splitting by row would put the same
    image in both splits and inflate the test score.
    """
    train: list[Mapping[str, Any]] = []
    test: list[Mapping[str, Any]] = []
    side: dict[Any, str] = {}
    for record in records:
        missing = [c for c in (columns.image, columns.question, columns.answer) if c not in record]
        if missing:
            raise VqaDataError(
                f"El dataset no tiene las columnas {missing} (columnas: {sorted(record)}); "
                "indica sus nombres con HubColumns."
            )
        key = record.get(columns.image_id, id(record))
        where = side.get(key)
        if where is None:
            where = "train" if len(train) < train_size else "test"
            side[key] = where
        target = train if where == "train" else test
        limit = train_size if where == "train" else test_size
        if len(target) < limit:
            target.append(record)
        if len(train) >= train_size and len(test) >= test_size:
            break
    return train, test


def export_hub_vqa(
    folder: Path,
    dataset_id: str,
    *,
    train_size: int,
    test_size: int,
    split: str = "validation",
    columns: HubColumns = HubColumns(),
) -> Path:
    """Stream a VQAv2-style Hub dataset and write a subset in the course's CSV layout.

    Only the rows needed are downloaded (``streaming=True``).  Images are saved as JPEG
    under ``folder/images``.  Returns ``folder``.
    """
    from datasets import load_dataset

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    stream = load_dataset(dataset_id, split=split, streaming=True)
    train, test = split_records_by_image(stream, train_size=train_size, test_size=test_size, columns=columns)
    for name, records in (("train", train), ("test", test)):
        rows = []
        for i, record in enumerate(records):
            file = f"images/{name}_{i:05d}.jpg"
            record[columns.image].convert("RGB").save(folder / file, format="JPEG", quality=90)
            qtype = str(record.get(columns.qtype) or "all")
            rows.append(VqaRow(file, str(record[columns.question]), str(record[columns.answer]), qtype))
        write_csv(folder / f"{name}.csv", rows)
    return folder


# --------------------------------------------------------------------------- one entry point

SYNTHETIC_ID = "local:synthetic-vqa"


def prepare_vqa(
    folder: Path,
    dataset_id: str,
    *,
    train_size: int,
    test_size: int,
    image_size: int = 64,
    seed: int = 42,
    split: str = "validation",
) -> tuple[list[VqaRow], list[VqaRow]]:
    """Make ``folder`` hold the VQA set of ``dataset_id`` and return ``(train, test)`` rows.

    ``local:synthetic-vqa`` is drawn with PIL (seconds, deterministic); any other id is
    streamed from the Hub once and reused on later runs when both CSVs already have the
    requested number of rows.
    """
    folder = Path(folder)
    if dataset_id == SYNTHETIC_ID:
        generate_synthetic_vqa(folder, train_size=train_size, test_size=test_size, image_size=image_size, seed=seed)
    elif dataset_id.startswith("local:"):
        raise VqaDataError(f"Dataset local desconocido {dataset_id!r}; el único es {SYNTHETIC_ID!r}.")
    else:
        done = all(
            (folder / f"{name}.csv").is_file() and len(read_csv(folder / f"{name}.csv", check_images=False)) == n
            for name, n in (("train", train_size), ("test", test_size))
        )
        if not done:
            export_hub_vqa(folder, dataset_id, train_size=train_size, test_size=test_size, split=split)
    return read_csv(folder / "train.csv"), read_csv(folder / "test.csv")
