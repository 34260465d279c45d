"""The FakeHub serves HubTree repos to the real clients (transformers, datasets, huggingface_hub).

The client calls run in a subprocess (``hub_client.py``): the Hub libraries read
``HF_ENDPOINT`` when they are imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rehearsal.hub import FakeHub, HubTree, _parse_range, client_env
from rehearsal.standins.common import tiny_qwen2, write_json, write_parquet, write_readme

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _build(tree: HubTree) -> None:
    tiny_qwen2(tree.model("org/tiny-qwen"))
    data = tree.dataset("org/parquet-set")
    write_readme(
        data,
        {
            "configs": [
                {
                    "config_name": "default",
                    "data_files": [
                        {"split": "train", "path": "data/train-*.parquet"},
                        {"split": "test", "path": "data/test-*.parquet"},
                    ],
                },
                {"config_name": "other", "data_files": [{"split": "train", "path": "other/*.parquet"}]},
            ],
        },
        "# parquet set\n",
    )
    write_parquet(data / "data" / "train-00000-of-00001.parquet", [{"text": f"t{i}", "n": i} for i in range(7)])
    write_parquet(data / "data" / "test-00000-of-00001.parquet", [{"text": f"x{i}", "n": i} for i in range(3)])
    write_parquet(data / "other" / "part.parquet", [{"word": "hola"}, {"word": "adiós"}])
    items = tree.dataset("org/json-set")
    write_json(
        items / "items.json",
        [{"id": str(i), "conversations": [{"from": "human", "value": f"q{i}"}]} for i in range(5)],
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> HubTree:
    tree = HubTree(tmp_path_factory.mktemp("hub"))
    _build(tree)
    return tree


@pytest.fixture(scope="module")
def client_report(tree, tmp_path_factory):
    """Run hub_client.py against a FakeHub serving ``tree``; return (report, hub)."""
    with FakeHub([tree]) as hub:
        env = client_env(dict(os.environ), hub.url, tmp_path_factory.mktemp("hf_home"))
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        proc = subprocess.run(
            [sys.executable, str(HERE / "hub_client.py")], env=env, capture_output=True, text=True, timeout=600
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return report, hub


def _ok(report: dict, name: str):
    entry = report[name]
    assert entry["ok"], entry.get("trace") or entry
    return entry["value"]


def test_transformers_loads_model_and_tokenizer(client_report):
    value = _ok(client_report[0], "model")
    assert value["class"] == "Qwen2ForCausalLM"
    assert value["dtype"] == "torch.bfloat16"  # config dtype "auto" follows the checkpoint, like Qwen2.5's
    assert value["new_tokens"] == 3 and value["chatml"]


def test_hf_hub_download_and_cache(client_report):
    assert _ok(client_report[0], "hf_hub_download") == {"model_type": "qwen2", "same_path": True}


def test_unknown_repo_and_file_raise_like_the_hub(client_report):
    report = client_report[0]
    assert _ok(report, "missing_repo") == "RepositoryNotFoundError"
    assert _ok(report, "missing_file") == "EntryNotFoundError"
    assert _ok(report, "missing_dataset") == "DatasetNotFoundError"


def test_load_dataset_parquet_with_configs(client_report):
    report = client_report[0]
    assert _ok(report, "parquet") == {
        "train": {"rows": 7, "columns": ["text", "n"]},
        "test": {"rows": 3, "columns": ["text", "n"]},
    }
    assert _ok(report, "parquet_config") == {
        "configs": ["default", "other"],
        "other_rows": 2,
        "other_columns": ["word"],
    }


def test_load_dataset_streaming(client_report):
    report = client_report[0]
    streamed = _ok(report, "parquet_streaming")
    assert streamed["rows"] == 7 and streamed["first"] == {"text": "t0", "n": 0}
    assert _ok(report, "json_streaming") == {"rows": 5}


def test_load_dataset_json_file(client_report):
    assert _ok(client_report[0], "json") == {"rows": 5, "columns": ["conversations", "id"]}


def test_every_request_was_served(client_report):
    hub = client_report[1]
    assert hub.requests, "the clients never reached the FakeHub"
    assert not hub.unhandled(), hub.unhandled()
    served = {r.path.split("?")[0] for r in hub.requests}
    assert any("/resolve/" in p for p in served) and any("/tree/" in p or "/paths-info/" in p for p in served)


def _get(url: str, headers: dict | None = None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_resolve_headers_and_ranges(tree):
    with FakeHub([tree]) as hub:
        config = (tree.root / "models" / "org" / "tiny-qwen" / "config.json").read_bytes()
        status, headers, body = _get(f"{hub.url}/org/tiny-qwen/resolve/main/config.json")
        assert status == 200 and body == config
        assert headers["Content-Length"] == str(len(config)) and headers["ETag"] and headers["X-Repo-Commit"]
        status, headers, body = _get(f"{hub.url}/org/tiny-qwen/resolve/main/config.json", {"Range": "bytes=2-9"})
        assert status == 206 and body == config[2:10]
        assert headers["Content-Range"] == f"bytes 2-9/{len(config)}"
        status, _, _ = _get(f"{hub.url}/org/tiny-qwen/resolve/main/config.json", {"Range": f"bytes={len(config)}-"})
        assert status == 416
        status, headers, _ = _get(f"{hub.url}/api/models/org/nope")
        assert status == 404 and headers["X-Error-Code"] == "RepoNotFound"
        status, headers, _ = _get(f"{hub.url}/api/models/org/tiny-qwen/revision/v9")
        assert status == 404 and headers["X-Error-Code"] == "RevisionNotFound"
        status, _, _ = _get(f"{hub.url}/api/spaces/org/x")
        assert status == 404
        assert [r.note for r in hub.unhandled()] == ["UNHANDLED"]


def test_tree_listing_recursive_and_by_folder(tree):
    with FakeHub([tree]) as hub:
        _, _, body = _get(f"{hub.url}/api/datasets/org/parquet-set/tree/main")
        top = {(e["type"], e["path"]) for e in json.loads(body)}
        assert top == {("directory", "data"), ("directory", "other"), ("file", "README.md")}
        _, _, body = _get(f"{hub.url}/api/datasets/org/parquet-set/tree/main/data")
        assert {e["path"] for e in json.loads(body)} == {
            "data/train-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet",
        }
        _, _, body = _get(f"{hub.url}/api/datasets/org/parquet-set/tree/main?recursive=true")
        assert len([e for e in json.loads(body) if e["type"] == "file"]) == 4


def test_parse_range():
    assert _parse_range("bytes=0-0", 10) == (0, 0)
    assert _parse_range("bytes=5-", 10) == (5, 9)
    assert _parse_range("bytes=-3", 10) == (7, 9)
    assert _parse_range("bytes=3-100", 10) == (3, 9)
    assert _parse_range("bytes=10-", 10) is None
    assert _parse_range("items=1-2", 10) is None
