"""Run in a subprocess by test_rehearsal_hub.py, with HF_ENDPOINT pointing at a FakeHub.

Each check loads something through the real clients (transformers, datasets,
huggingface_hub) and records what it got; the JSON report is printed on the last line.
The Hub clients read HF_ENDPOINT at import time, hence the separate process.
"""

from __future__ import annotations

import json
import sys
import traceback

report: dict[str, object] = {}


def check(name):
    def wrap(fn):
        try:
            report[name] = {"ok": True, "value": fn()}
        except Exception as exc:  # noqa: BLE001 - report it: the test shows the failure
            report[name] = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-3000:],
            }
        return fn

    return wrap


@check("model")
def _model():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained("org/tiny-qwen")
    model = AutoModelForCausalLM.from_pretrained("org/tiny-qwen")
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hola"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    return {
        "class": type(model).__name__,
        "dtype": str(model.dtype),
        "new_tokens": out.shape[1] - ids["input_ids"].shape[1],
        "chatml": "<|im_start|>assistant" in text,
    }


@check("hf_hub_download")
def _download():
    from huggingface_hub import hf_hub_download

    path = hf_hub_download("org/tiny-qwen", "config.json")
    again = hf_hub_download("org/tiny-qwen", "config.json")
    return {"model_type": json.load(open(path))["model_type"], "same_path": path == again}


@check("missing_repo")
def _missing_repo():
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        hf_hub_download("org/does-not-exist", "config.json")
    except RepositoryNotFoundError:
        return "RepositoryNotFoundError"
    return "no error"


@check("missing_file")
def _missing_file():
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        hf_hub_download("org/tiny-qwen", "nope.bin")
    except EntryNotFoundError:
        return "EntryNotFoundError"
    return "no error"


@check("parquet")
def _parquet():
    from datasets import load_dataset

    splits = load_dataset("org/parquet-set")
    return {name: {"rows": len(split), "columns": split.column_names} for name, split in splits.items()}


@check("parquet_config")
def _parquet_config():
    from datasets import get_dataset_config_names, load_dataset

    names = get_dataset_config_names("org/parquet-set")
    other = load_dataset("org/parquet-set", "other", split="train")
    return {"configs": sorted(names), "other_rows": len(other), "other_columns": other.column_names}


@check("parquet_streaming")
def _parquet_streaming():
    from datasets import load_dataset

    stream = load_dataset("org/parquet-set", split="train", streaming=True)
    rows = list(stream)
    return {"rows": len(rows), "first": rows[0]}


@check("json")
def _json():
    from datasets import load_dataset

    data = load_dataset("org/json-set", data_files="items.json", split="train")
    return {"rows": len(data), "columns": sorted(data.column_names)}


@check("json_streaming")
def _json_streaming():
    from datasets import load_dataset

    stream = load_dataset("org/json-set", data_files="items.json", split="train", streaming=True)
    return {"rows": sum(1 for _ in stream)}


@check("missing_dataset")
def _missing_dataset():
    from datasets import load_dataset
    from datasets.exceptions import DatasetNotFoundError

    try:
        load_dataset("org/no-such-set")
    except DatasetNotFoundError:
        return "DatasetNotFoundError"
    return "no error"


print(json.dumps(report))
sys.exit(0)
