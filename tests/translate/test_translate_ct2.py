"""The CTranslate2 backend for real: conversion of the mini MarianMT model, its cache, its
errors, and the command line.  (The protection and QA tests of test_translate_engine.py run
with this backend too.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from utils.core.errors import CourseError
from utils.core.paths import cache_dir
from utils.core.settings import get_settings
from utils.translate.ct2_backend import (
    CTranslate2Backend,
    CTranslate2Error,
    auto_quantization,
    conversion_key,
    converted_model_dir,
)
from utils.translate.records import input_file

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["What color is the bus?", "A much longer sentence about a dog catching a frisbee in a park.", "Yes."]


@pytest.fixture(scope="module")
def mini_model() -> str:
    from utils.core.assets import resolve_model

    return resolve_model("local:opus-mt-en-es-random")


@pytest.fixture(scope="module")
def ct2(mini_model) -> CTranslate2Backend:
    return CTranslate2Backend(mini_model, batch_size=4, max_new_tokens=6, device="cpu")


def test_mini_vocabulary_has_a_token_for_every_row_of_the_output_layer(mini_model):
    from transformers import AutoConfig

    vocab = json.loads((Path(mini_model) / "vocab.json").read_text(encoding="utf-8"))
    size = AutoConfig.from_pretrained(mini_model).vocab_size
    assert sorted(vocab.values()) == list(range(size)) == list(range(65001))
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == 65000


def test_ct2_backend_translates_a_batch_with_int8_on_cpu(ct2):
    outputs = ct2.translate(TEXTS)
    assert len(outputs) == 3 and all(isinstance(o, str) and o.strip() for o in outputs)
    assert ct2.translate([]) == []
    assert ct2.quantization == auto_quantization("cpu") == "int8" and auto_quantization("cuda") == "int8_float16"
    assert ct2.name.startswith("ctranslate2:") and ct2.name.endswith("quantization=int8")
    assert "max_new_tokens=6" in ct2.name and "num_beams=1" in ct2.name
    assert ct2.model_dir.parent == cache_dir() / "ct2" and (ct2.model_dir / "model.bin").is_file()


def test_conversion_is_cached_per_model_and_quantization(ct2, mini_model, monkeypatch):
    import ctranslate2

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", no_conversion)
    again = CTranslate2Backend(mini_model, batch_size=4, max_new_tokens=6, device="cpu")
    assert again.model_dir == ct2.model_dir and again.translate(TEXTS) == ct2.translate(TEXTS)
    # Another quantization or another model is another folder.
    assert conversion_key(mini_model, "int8_float32") != conversion_key(mini_model, "int8") == ct2.model_dir.name
    assert conversion_key("Helsinki-NLP/opus-mt-en-es", "int8") != ct2.model_dir.name


def test_a_crash_during_conversion_leaves_no_half_converted_folder(mini_model, tmp_path, monkeypatch):
    import ctranslate2

    class Crashes:
        def __init__(self, model):
            pass

        def convert(self, out, **kwargs):
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / "model.bin").write_bytes(b"half")
            raise MemoryError("killed mid-conversion")

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", Crashes)
    with pytest.raises(MemoryError):
        converted_model_dir(mini_model, "int8")
    assert list((tmp_path / "ct2").iterdir()) == []


def test_a_bad_quantization_is_a_clear_spanish_error_before_any_conversion(mini_model, monkeypatch):
    import ctranslate2

    from utils.translate.backends import make_backend

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", None)  # calling it would fail
    with pytest.raises(CourseError, match=r"Cuantización desconocida para CTranslate2: 'int3'.*int8_float16"):
        make_backend("ctranslate2", settings=get_settings("mini"), quantization="int3")
    with pytest.raises(CTranslate2Error, match=r"no puede calcular en 'float16' en la CPU de esta máquina.*int8"):
        CTranslate2Backend(mini_model, device="cpu", quantization="float16")


def test_cli_runs_the_ctranslate2_backend_and_refuses_a_bad_quantization(tmp_path):
    mini = input_file(get_settings("mini").translate)
    args = [
        sys.executable,
        "-m",
        "utils.translate",
        "run",
        str(mini),
        str(tmp_path / "out"),
        "--no-progress",
        "--profile",
        "mini",
        "--limit",
        "6",
        "--max-new-tokens",
        "4",
        "--backend",
        "ctranslate2",
    ]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["complete"] and report["backend"].startswith("ctranslate2:")
    assert report["backend"].endswith("quantization=int8") and report["rows_in"] == 6
    bad = subprocess.run(
        args[:5] + [str(tmp_path / "bad"), *args[6:], "--quantization", "int3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert "Cuantización desconocida para CTranslate2: 'int3'" in bad.stderr


def test_benchmark_prints_every_side_and_the_speedup_last_as_key_value_lines(tmp_path, capsys):
    """A tiny run of benchmarks/translation_throughput.py (3 rows, 2 tokens): the wiring, not the numbers."""
    import importlib.util

    rows = json.loads(input_file(get_settings("mini").translate).read_text(encoding="utf-8"))[:3]
    source = tmp_path / "rows.json"
    source.write_text(json.dumps(rows), encoding="utf-8")
    path = ROOT / "benchmarks" / "translation_throughput.py"
    spec = importlib.util.spec_from_file_location("translation_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    speedup = bench.main(["--input", str(source), "--new-tokens", "2", "--naive-segments", "3", "--threads", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    values = dict(line.split("=", 1) for line in lines[lines.index(next(x for x in lines if x.startswith("cpus="))) :])
    assert list(values)[-1] == "speedup" and float(values["speedup"]) == round(speedup, 1)
    expected = {"naive_float32", "engine_transformers_float32", "engine_ctranslate2_int8", "load_before", "load_after"}
    assert expected <= set(values)
    engines = {k: float(v) for k, v in values.items() if k.startswith("engine_")}
    naive = float(values["naive_float32"])  # speedup= is against the loop as usually written (float32)
    fastest_naive = max(float(v) for k, v in values.items() if k.startswith("naive_"))
    assert values["best"] == max(engines, key=engines.get).removeprefix("engine_")
    assert abs(speedup - max(engines.values()) / naive) <= 0.05 * speedup  # from the printed (rounded) rates
    fastest = float(values["speedup_vs_fastest_naive"])
    assert abs(fastest - max(engines.values()) / fastest_naive) <= 0.05 * fastest + 0.05
