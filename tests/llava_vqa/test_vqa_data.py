"""Notebook 04 data: the synthetic generator, CSV → conversation rows, scoring helpers."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from utils.llava_vqa.vqa_data import (
    CAPTION_QTYPE,
    CELLS,
    COLOURS,
    CSV_COLUMNS,
    QUESTION_TYPES,
    HubColumns,
    VqaDataError,
    VqaRow,
    csv_to_llava_rows,
    exact_match_accuracy,
    generate_synthetic_vqa,
    llava_row_to_messages,
    majority_answers,
    majority_predictions,
    normalize_answer,
    read_csv,
    split_records_by_image,
    write_csv,
)


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_generator_is_deterministic_and_seed_dependent(tmp_path):
    a = generate_synthetic_vqa(tmp_path / "a", train_size=12, test_size=8, seed=7)
    b = generate_synthetic_vqa(tmp_path / "b", train_size=12, test_size=8, seed=7)
    c = generate_synthetic_vqa(tmp_path / "c", train_size=12, test_size=8, seed=8)
    assert digest(a) == digest(b), "same seed must give byte-identical files"
    assert digest(a)["train.csv"] != digest(c)["train.csv"]
    assert len([k for k in digest(a) if k.startswith("images/")]) == 20


def test_generated_rows_are_balanced_spanish_and_consistent_with_the_image(tmp_path):
    from PIL import Image

    folder = generate_synthetic_vqa(tmp_path, train_size=40, test_size=8, image_size=64, seed=1)
    rows = read_csv(folder / "train.csv")
    assert Counter(r.qtype for r in rows) == {t: 10 for t in QUESTION_TYPES}
    assert all(r.question.startswith("¿") and r.question.endswith("?") for r in rows)
    for row in rows:
        image = Image.open(folder / row.image)
        assert image.size == (64, 64) and image.mode == "RGB"
        if row.qtype == "color":  # the named colour really is the dominant non-background colour
            colours = Counter(p for p in image.get_flattened_data() if max(p) - min(p) > 60)
            pixel = colours.most_common(1)[0][0]
            nearest = min(COLOURS, key=lambda name: sum((a - b) ** 2 for a, b in zip(COLOURS[name], pixel)))
            assert nearest == row.answer, row


def test_captions_describe_every_training_image_with_the_answers_of_its_questions(tmp_path):
    """Stage 1 (alignment) rows: one description per training image, none for test images,
    holding the answer its VQA question gives (colour, shape, count word, and a cell named
    when the position answer is «sí», absent when it is «no»)."""
    folder = generate_synthetic_vqa(tmp_path, train_size=40, test_size=8, seed=3)
    rows, captions = read_csv(folder / "train.csv"), read_csv(folder / "captions.csv")
    assert [c.image for c in captions] == [r.image for r in rows]
    assert {c.qtype for c in captions} == {CAPTION_QTYPE}
    for row, caption in zip(rows, captions):
        text = caption.answer
        if row.qtype == "posicion":
            cell = next(name for name in CELLS.values() if name in row.question)
            assert (cell in text) == (row.answer == "sí"), (row, text)
        elif row.qtype == "conteo":
            assert text.startswith(row.answer + " figura"), (row, text)
        else:
            assert f" {row.answer}" in text, (row, text)
    test_images = {r.image for r in read_csv(folder / "test.csv")}
    assert not test_images & {c.image for c in captions}


def test_shapes_are_large_relative_to_the_patch_grid(tmp_path):
    from PIL import Image

    folder = generate_synthetic_vqa(tmp_path, train_size=8, test_size=1, image_size=64, seed=3)
    for row in read_csv(folder / "train.csv"):
        if row.qtype == "conteo" and row.answer == "una":
            image = Image.open(folder / row.image)
            coloured = sum(1 for p in image.get_flattened_data() if max(p) - min(p) > 60)
            assert coloured / (64 * 64) > 0.05, (
                "one shape should fill a good part of its 32 px cell (one patch of the tiny tower)"
            )


def test_csv_errors_name_the_file_line_and_fix(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,question\nx.png,¿?\n", encoding="utf-8")
    with pytest.raises(VqaDataError, match=r"faltan las columnas.*answer"):
        read_csv(bad)
    bad.write_text("image,question,answer,qtype\nx.png,¿Qué?,,color\n", encoding="utf-8")
    with pytest.raises(VqaDataError, match=r"bad\.csv:2: celdas vacías \['answer'\]"):
        read_csv(bad)
    bad.write_text("image,question,answer,qtype\nnope.png,¿Qué?,rojo,color\n", encoding="utf-8")
    with pytest.raises(VqaDataError, match=r"no se encuentra la imagen .nope\.png"):
        read_csv(bad)
    assert read_csv(bad, check_images=False)[0].answer == "rojo"


def _one_image_csv(folder: Path, image: str = "images/a.png") -> Path:
    from PIL import Image

    (folder / "images").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(folder / "images" / "a.png")
    return write_csv(folder / "train.csv", [VqaRow(image, "¿De qué color es?", "rojo", "color")])


def test_csv_loader_keeps_image_paths_inside_the_csv_folder(tmp_path):
    """Issue 15: ``../x.png`` and ``/etc/hostname`` were accepted as images."""
    _one_image_csv(tmp_path)  # a real image just outside the CSV's folder
    (tmp_path / "images" / "a.png").rename(tmp_path / "outside.png")
    folder = tmp_path / "set"
    for image in ("../outside.png", "/etc/hostname", "images/../../outside.png"):
        path = _one_image_csv(folder, image)
        with pytest.raises(VqaDataError, match=r"train\.csv:2: la imagen .* está fuera de la carpeta del CSV"):
            read_csv(path)
        with pytest.raises(VqaDataError, match="fuera de la carpeta"):
            read_csv(path, check_images=False)  # the path check does not depend on opening it
    assert read_csv(_one_image_csv(folder))[0].answer == "rojo"


def test_csv_loader_opens_each_image_at_load_time(tmp_path):
    """A file that exists but is not an image fails when the CSV is read, naming the line."""
    path = _one_image_csv(tmp_path)
    (tmp_path / "images" / "a.png").write_bytes(b"not a png at all")
    with pytest.raises(VqaDataError, match=r"train\.csv:2: 'images/a\.png' no es una imagen legible"):
        read_csv(path)


def test_csv_loader_accepts_a_bom_and_explains_bad_encodings_and_quotes(tmp_path):
    path = _one_image_csv(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))  # Excel's «CSV UTF-8» starts with a BOM
    assert [r.image for r in read_csv(path)] == ["images/a.png"]

    path.write_bytes(text.encode("latin-1"))  # «¿De qué color es?» in latin-1
    with pytest.raises(VqaDataError, match=r"train\.csv:2: el byte .* no es UTF-8.*CSV UTF-8"):
        read_csv(path)
    path.write_bytes(text.encode("utf-16"))
    with pytest.raises(VqaDataError, match=r"train\.csv está en UTF-16.*CSV UTF-8"):
        read_csv(path)
    path.write_text(text + 'images/a.png,"¿Sin cerrar?,rojo,color\n', encoding="utf-8")
    with pytest.raises(VqaDataError, match=r"train\.csv:3: CSV mal formado .*comillas sin cerrar"):
        read_csv(path)


def test_csv_round_trip_keeps_accents_and_commas(tmp_path):
    rows = [VqaRow("images/a.png", "¿Qué forma, exactamente, tiene?", "triángulo", "forma")]
    path = write_csv(tmp_path / "x.csv", rows)
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(CSV_COLUMNS)
    assert read_csv(path, check_images=False) == rows


def test_csv_to_llava_rows_and_messages():
    rows = [VqaRow("images/a.png", "¿De qué color es la figura?", "rojo", "color")]
    llava = csv_to_llava_rows(rows, instruction="Responde con una sola palabra.")
    assert llava == [
        {
            "id": "000000",
            "image": "images/a.png",
            "qtype": "color",
            "conversations": [
                {"from": "human", "value": "<image>\n¿De qué color es la figura?\nResponde con una sola palabra."},
                {"from": "gpt", "value": "rojo"},
            ],
        }
    ]
    assert llava[0]["conversations"][-1]["value"] == "rojo"
    assert llava_row_to_messages(llava[0]) == [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "¿De qué color es la figura?\nResponde con una sola palabra."},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "rojo"}]},
    ]
    prompt_only = llava_row_to_messages(llava[0], with_answer=False)
    assert [m["role"] for m in prompt_only] == ["user"]


def test_malformed_conversations_are_rejected():
    no_image = {"id": "7", "conversations": [{"from": "human", "value": "¿Color?"}, {"from": "gpt", "value": "rojo"}]}
    with pytest.raises(VqaDataError, match=r"'7'.*exactamente un <image>"):
        llava_row_to_messages(no_image)
    stranger = {"id": "8", "conversations": [{"from": "human", "value": "<image>\n¿?"}, {"from": "bot", "value": "x"}]}
    with pytest.raises(VqaDataError, match="interlocutor desconocido 'bot'"):
        llava_row_to_messages(stranger)


def test_normalization_and_exact_match():
    assert normalize_answer("  Sí.") == normalize_answer("si") == "si"
    assert normalize_answer("Triángulo!\nporque tiene tres lados") == "triangulo"
    acc = exact_match_accuracy(
        ["rojo", "sí", "dos", "dos"], ["Rojo.", "no", "dos", "tres"], ["color", "posicion", "conteo", "conteo"]
    )
    assert acc.overall == 0.5 and acc.n == 4
    assert acc.per_type == {"color": 1.0, "conteo": 0.5, "posicion": 0.0}
    with pytest.raises(ValueError, match="Lengths differ"):
        exact_match_accuracy(["a"], [], ["t"])


def test_majority_baseline_uses_training_answers_per_type():
    train = [
        VqaRow("i", "q", a, t)
        for a, t in [("rojo", "color"), ("rojo", "color"), ("azul", "color"), ("sí", "posicion")]
    ]
    test = [VqaRow("i", "q", "azul", "color"), VqaRow("i", "q", "sí", "posicion"), VqaRow("i", "q", "x", "nuevo")]
    assert majority_answers(train) == {"color": "rojo", "posicion": "si"}
    assert majority_predictions(train, test) == ["rojo", "si", "rojo"]


def test_hub_split_keeps_each_image_in_one_split():
    cols = HubColumns()
    records = [
        {"image": None, "question": f"q{i}", "multiple_choice_answer": "yes", "image_id": i // 3} for i in range(30)
    ]
    train, test = split_records_by_image(records, train_size=5, test_size=4, columns=cols)
    assert len(train) == 5 and len(test) == 4
    assert not {r["image_id"] for r in train} & {r["image_id"] for r in test}
    with pytest.raises(VqaDataError, match=r"no tiene las columnas \['multiple_choice_answer'\]"):
        split_records_by_image([{"image": None, "question": "q"}], train_size=1, test_size=1)
