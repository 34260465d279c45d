"""Real backends: the mini MarianMT model, the course's llama.cpp server, and the full
profile's calls checked statically against the installed libraries."""

from __future__ import annotations

import inspect
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from utils.core.retry import RetryPolicy
from utils.core.settings import get_settings
from utils.translate.backends import ChatBackend, ChatPrompt, Seq2SeqBackend, make_backend


@pytest.fixture(scope="module")
def marian() -> Seq2SeqBackend:
    from utils.core.assets import resolve_model

    return Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), batch_size=4, max_new_tokens=6)


def test_mini_model_has_the_opus_mt_en_es_architecture(marian):
    from transformers import MarianMTModel

    from utils.translate.mini_model import OPUS_MT_EN_ES_CONFIG

    assert isinstance(marian.model, MarianMTModel)
    config = marian.model.config
    for key, value in OPUS_MT_EN_ES_CONFIG.items():
        assert getattr(config, key) == value, key
    assert sum(p.numel() for p in marian.model.parameters()) > 70_000_000  # ~78M like the real one
    assert marian.tokenizer.pad_token_id == 65000 and marian.tokenizer.eos_token_id == 0


def test_seq2seq_backend_translates_a_padded_batch(marian):
    texts = ["What color is the bus?", "A much longer sentence about a dog catching a frisbee in a park.", "Yes."]
    outputs = marian.translate(texts)
    assert len(outputs) == 3 and all(isinstance(o, str) and o.strip() for o in outputs)
    assert marian.translate([]) == []
    assert "max_new_tokens=6" in marian.name and "num_beams=1" in marian.name


def test_seq2seq_backend_decodes_with_the_fast_greedy_loop_and_the_same_outputs(marian):
    from utils.core.assets import resolve_model

    assert marian.fast_greedy_off is None  # greedy opus-mt: the fast loop is used
    slow = Seq2SeqBackend(
        resolve_model("local:opus-mt-en-es-random"), batch_size=4, max_new_tokens=6, fast_greedy=False
    )
    assert slow.fast_greedy_off == "fast_greedy=False" and slow.name == marian.name  # same outputs, same cache key
    texts = ["What color is the bus?", "A much longer sentence about a dog catching a frisbee in a park.", "Yes."]
    assert marian.translate(texts) == slow.translate(texts)
    beams = Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), max_new_tokens=4, num_beams=2)
    assert "num_beams=2" in (beams.fast_greedy_off or "")  # beam search goes through generate
    assert len(beams.translate(["Yes."])) == 1


def test_precision_is_chosen_by_the_hardware_and_named():
    import torch

    from utils.core.assets import resolve_model
    from utils.translate.backends import auto_dtype

    native_bf16 = any(torch.cpu.get_capabilities().get(k) for k in ("avx512_bf16", "amx_bf16"))
    assert auto_dtype("cpu") == ("bfloat16" if native_bf16 else "float32")
    assert auto_dtype("cuda") == "float16"
    backend = Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), max_new_tokens=4, dtype="float32")
    assert next(backend.model.parameters()).dtype == torch.float32 and backend.name.endswith("dtype=float32")
    with pytest.raises(ValueError, match="La precisión 'fp8' no existe"):
        Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), dtype="fp8")


def test_fixed_length_generation_for_benchmarks():
    from utils.core.assets import resolve_model

    backend = Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), max_new_tokens=5, min_new_tokens=5)
    inputs = backend.tokenizer(["Hello there."], return_tensors="pt")
    out = backend.model.generate(**inputs, **backend.generate_kwargs)
    assert out.shape[1] == 1 + 5  # decoder start token + exactly 5 new tokens


def test_full_profile_generation_and_loading_arguments_exist():
    """The full profile cannot run here; check its calls against the installed versions."""
    from huggingface_hub import hf_hub_download
    from transformers import GenerationConfig, MarianConfig, MarianTokenizer, NllbTokenizer

    from utils.translate.mini_model import OPUS_MT_EN_ES_CONFIG

    # NLLB (the documented option) is detected by its `src_lang`; Marian has none.
    assert hasattr(NllbTokenizer, "src_lang") and not hasattr(MarianTokenizer, "src_lang")
    full = get_settings("full").translate
    kwargs = {
        "max_new_tokens": full.max_new_tokens,
        "num_beams": full.num_beams,
        "do_sample": False,
        "forced_bos_token_id": 3,
        "min_new_tokens": 1,
    }
    GenerationConfig(**kwargs).validate(strict=True)
    assert set(OPUS_MT_EN_ES_CONFIG) <= {f for f in MarianConfig.__dataclass_fields__}
    params = inspect.signature(hf_hub_download).parameters
    assert {"repo_id", "filename", "repo_type"} <= set(params)
    from datasets import Dataset, load_dataset

    assert {"repo_id", "private", "token"} <= set(inspect.signature(Dataset.push_to_hub).parameters)
    assert {"data_files", "split"} <= set(inspect.signature(load_dataset).parameters)
    assert full.mt_model_id == "Helsinki-NLP/opus-mt-en-es" and full.dataset_id == "liuhaotian/LLaVA-Instruct-150K"


def test_make_backend_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="seq2seq, openai"):
        make_backend("google-translate")


# --------------------------------------------------------------------------- chat


class _FlakyChatServer(BaseHTTPRequestHandler):
    """OpenAI-style endpoint that answers 503 twice, then a translation (fault injection)."""

    calls = 0

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = json.loads(self.rfile.read(length))
        type(self).calls += 1
        if type(self).calls <= 2:
            self.send_response(503)
            self.end_headers()
            return
        text = body["messages"][-1]["content"]
        payload = {
            "id": "x",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"ES: {text}"}}
            ],
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep test output clean
        pass


def test_chat_backend_retries_server_errors_per_request():
    from openai import OpenAI

    server = ThreadingHTTPServer(("127.0.0.1", 0), _FlakyChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = OpenAI(base_url=f"http://127.0.0.1:{server.server_port}/v1", api_key="x", max_retries=0)
        backend = ChatBackend(client, "m", concurrency=1, retry=RetryPolicy(attempts=3, base_delay=0.01))
        assert backend.translate(["Hello."]) == ["ES: Hello."]
        assert _FlakyChatServer.calls == 3
    finally:
        server.shutdown()
        server.server_close()


def test_prompt_has_examples_then_the_text():
    messages = ChatPrompt().messages("Is it raining?")
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "Is it raining?"}
    assert [m["role"] for m in messages[1:-1]] == ["user", "assistant"] * (len(messages[1:-1]) // 2)


@pytest.fixture(scope="module")
def course_server():
    from utils.services import llm_server

    already = llm_server.status().healthy
    llm_server.ensure_running()
    yield
    if not already:
        llm_server.stop()


@pytest.mark.server
def test_chat_backend_translates_through_the_local_llama_cpp_server(course_server):
    backend = make_backend("openai", batch_size=2, max_new_tokens=32)
    assert backend.name.startswith("chat:http://127.0.0.1:")
    outputs = backend.translate(["What color is the bus?", "The dog is sleeping."])
    assert len(outputs) == 2 and all(isinstance(o, str) and o.strip() for o in outputs)
