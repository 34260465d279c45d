"""Notebook 02's stand-ins, loaded through the FakeHub by the notebook's own code.

The corpus goes through ``utils.sft_dpo.wiki_corpus.load_source`` (``load_dataset(…, streaming=True)``
on the real repo id and config) and the filters; each model through the notebook's own
``make_llm`` (its cells) → distilabel's ``TransformersLLM`` → ``transformers.pipeline``, generating one batch.  The Hub
clients read ``HF_ENDPOINT`` at import, hence the subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from rehearsal.hub import FakeHub, HubTree, client_env
from rehearsal.standins import nb02
from utils.core.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
FULL = get_settings("full").sft_dpo

CLIENT = """
import json, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, "TESTS_DIR")
from nb02_fixtures import notebook_cells
from utils.core.settings import get_settings
from utils.sft_dpo.wiki_corpus import CorpusReport, clean_articles, excerpt, load_source

cfg = get_settings("full").sft_dpo
cells = notebook_cells("full")  # the notebook's own make_llm and GroundedInstruction
report = CorpusReport()
articles = list(clean_articles(load_source(cfg.wikipedia_dataset, cfg.wikipedia_config, cfg.scan_limit),
                               min_chars=cfg.min_chars, max_chars=cfg.max_chars, report=report))
rows = [{"title": a.title, "content": excerpt(a.text, cfg.context_chars)} for a in articles]
out = {"corpus": report.as_dict(), "first_title": articles[0].title, "models": {}}
for model in sorted({cfg.generator_model, *cfg.candidate_models, cfg.judge_model}):
    task = cells.GroundedInstruction(name="g", llm=cells.make_llm(model, 4, cfg.temperature))
    task.load()
    llm = task.llm
    meta = {"class": type(llm._pipeline.model).__name__, "dtype": str(llm._pipeline.model.dtype),
            "batch": llm._pipeline._batch_size}
    done = next(task.process([dict(row) for row in rows]))
    task.unload()
    meta["outputs"] = sum(isinstance(r["distilabel_metadata"]["raw_output_g"], str) for r in done)
    out["models"][model] = meta
print(json.dumps(out))
""".replace("TESTS_DIR", str(ROOT / "tests"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> HubTree:
    tree = HubTree(tmp_path_factory.mktemp("hub02"))
    nb02.build(tree)
    return tree


def test_models_have_qwen25_config_keys_and_a_chatml_tokenizer(tree):
    for model_id in (FULL.generator_model, *FULL.candidate_models, FULL.judge_model):
        repo = tree.root / "models" / model_id
        config = json.loads((repo / "config.json").read_text())
        assert config["architectures"] == ["Qwen2ForCausalLM"] and config["model_type"] == "qwen2"
        assert config["tie_word_embeddings"] is True  # as in Qwen2.5-0.5B/1.5B/3B
        assert {"max_window_layers", "num_key_value_heads", "sliding_window", "use_sliding_window"} <= set(config)
        assert (config.get("rope_parameters") or config)["rope_theta"] == 1000000.0  # transformers 5 nests it
        assert "<|im_start|>" in (repo / "chat_template.jinja").read_text()


def test_wikipedia_has_the_real_layout(tree):
    repo = tree.root / "datasets" / nb02.WIKIPEDIA
    header = yaml.safe_load((repo / "README.md").read_text().split("---")[1])
    assert header["configs"] == [
        {"config_name": "20231101.es", "data_files": [{"split": "train", "path": "20231101.es/train-*"}]}
    ]
    shards = sorted((repo / "20231101.es").glob("train-*-of-*.parquet"))
    assert [p.name for p in shards] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    schema = pq.read_schema(shards[0])
    assert schema.names == ["id", "url", "title", "text"] and all(str(t) == "string" for t in schema.types)


@pytest.mark.slow
def test_the_notebooks_calls_load_everything_through_the_fakehub(tree, tmp_path):
    with FakeHub([tree]) as hub:
        env = client_env(dict(os.environ), hub.url, tmp_path / "hf_home")
        env.update(COURSE_PROFILE="full", PYTHONPATH=os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-c", CLIENT], env=env, capture_output=True, text=True, timeout=900)
        unserved = [r for r in hub.requests if r.note == "UNHANDLED" or r.status >= 500]
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not unserved
    assert out["corpus"] == {"articles_read": 8, "articles_kept": 4, "dropped_disambiguation": 2,
                             "dropped_too_short": 2, "sections_stripped": out["corpus"]["sections_stripped"]}  # fmt: skip
    assert set(out["models"]) == {FULL.generator_model, *FULL.candidate_models, FULL.judge_model}
    for meta in out["models"].values():  # on CPU: float32 (never fp16), the 4 rows in one forward pass
        assert meta == {"class": "Qwen2ForCausalLM", "dtype": "torch.float32", "batch": FULL.batch_size, "outputs": 4}


def test_each_rehearsal_gets_a_fresh_build_dir_and_the_local_argilla(monkeypatch, tmp_path):
    """A second rehearsal must generate again: an old LLM cache in COURSE_BUILD_DIR made the
    second run of notebook 02 read every answer back (0 tokens generated) and still pass."""
    from rehearsal import __main__ as runner
    from utils.services.argilla_server import LOCAL_API_KEY

    monkeypatch.setattr(runner, "rehearsal_dir", lambda: tmp_path)
    monkeypatch.setenv("COURSE_ARGILLA_PORT", "26911")
    monkeypatch.setenv("ARGILLA_API_URL", "https://mi-space.hf.space")  # a learner's real Space: never used here
    first = Path(runner.notebook_env("02", "http://127.0.0.1:1")["COURSE_BUILD_DIR"])
    stale = first / "sft_dpo" / "cache" / "full" / "sft.jsonl"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}\n")
    env = runner.notebook_env("02", "http://127.0.0.1:1")
    assert Path(env["COURSE_BUILD_DIR"]) == first and not any(first.iterdir())
    assert Path(runner.notebook_env("03", "http://127.0.0.1:1")["COURSE_BUILD_DIR"]) != first
    assert env["ARGILLA_API_URL"] == "http://127.0.0.1:26911" and env["ARGILLA_API_KEY"] == LOCAL_API_KEY
