"""Stand-ins for notebook 03 (good vs bad data), full profile.

Model ``Qwen/Qwen2.5-0.5B-Instruct``
    :func:`rehearsal.standins.common.tiny_qwen2`: a tiny random ``Qwen2ForCausalLM`` with
    the real config keys (Qwen/Qwen2.5-0.5B-Instruct config.json: 24 layers of 896 with 14
    heads and 2 KV heads, tied embeddings, rope_theta 1e6; here 2 layers of 64 with 4 heads
    and 2 KV heads, still grouped-query attention), the real module names (what LoRA
    ``all-linear`` and 4-bit quantization act on), Qwen2.5's sampling defaults in
    ``generation_config.json`` (the notebook's greedy decoding must override them, as with the
    real model) and SmolLM2's ChatML tokenizer with Qwen2.5's special-token roles.

Datasets ``mrm8488/en_es_sample_good`` and ``mrm8488/en_es_sample_bad``
    Layout from their dataset cards (README.md YAML on the Hub, revisions e01b4ac and 94e48d8):
    one ``default`` config whose ``train`` split is ``data/train-*`` (``push_to_hub`` writes
    ``data/train-00000-of-00001.parquet``), features ``source`` and ``target`` (string), 20
    rows each.  The rows are the first 20 pairs of the course's own ``data/en_es_good.jsonl`` /
    ``en_es_bad.jsonl`` (the real rows are not available offline); the size is the real one.
"""

from __future__ import annotations

import json
from pathlib import Path

from rehearsal.standins.common import tiny_qwen2, write_parquet, write_readme

BASE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
DATASETS = {"mrm8488/en_es_sample_good": "en_es_good.jsonl", "mrm8488/en_es_sample_bad": "en_es_bad.jsonl"}
#: Rows per Hub sample (dataset cards: ``num_examples: 20``).
HUB_SAMPLE_ROWS = 20


def write_pairs_dataset(folder: Path, rows: list[dict[str, str]]) -> None:
    """A Hub dataset repo as ``push_to_hub`` writes it: README.md YAML + one parquet shard."""
    import pyarrow as pa

    schema = pa.schema([("source", pa.string()), ("target", pa.string())])
    write_parquet(folder / "data" / "train-00000-of-00001.parquet", rows, schema=schema)
    num_bytes = sum(len(r["source"].encode()) + len(r["target"].encode()) for r in rows)
    write_readme(
        folder,
        {
            "dataset_info": {
                "features": [{"name": "source", "dtype": "string"}, {"name": "target", "dtype": "string"}],
                "splits": [{"name": "train", "num_bytes": num_bytes, "num_examples": len(rows)}],
            },
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}],
        },
    )


def _course_rows(file: str) -> list[dict[str, str]]:
    from utils.core.paths import data_dir

    lines = (data_dir() / file).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()][:HUB_SAMPLE_ROWS]
    return [{"source": r["source"], "target": r["target"]} for r in rows]


def build(hub) -> None:
    """Write notebook 03's stand-ins into ``hub`` (a :class:`rehearsal.hub.HubTree`)."""
    tiny_qwen2(hub.model(BASE_MODEL))
    for repo_id, file in DATASETS.items():
        write_pairs_dataset(hub.dataset(repo_id), _course_rows(file))
