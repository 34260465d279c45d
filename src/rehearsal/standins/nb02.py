"""Stand-ins for notebook 02 (SFT and DPO data with distilabel + Argilla), full profile.

Models (``settings.sft_dpo``): the generator ``Qwen/Qwen2.5-1.5B-Instruct``, the closed-book
candidates ``Qwen/Qwen2.5-1.5B-Instruct`` and ``Qwen/Qwen2.5-0.5B-Instruct``, and the judge
``Qwen/Qwen2.5-3B-Instruct``.  Each is a tiny random ``Qwen2ForCausalLM`` with Qwen2.5's config
keys (:func:`rehearsal.standins.common.tiny_qwen2`: same module names, tied embeddings as in
these three sizes, bfloat16 checkpoint, ChatML tokenizer), loaded by distilabel's
``TransformersLLM`` through ``transformers.pipeline`` exactly as on Colab.

Corpus: ``wikimedia/wikipedia``, config ``20231101.es``, streamed with
``load_dataset("wikimedia/wikipedia", "20231101.es", split="train", streaming=True)``.
Layout of the real repo: one folder per config with parquet shards
``20231101.es/train-0000N-of-0000M.parquet``, declared in the card's YAML ``configs:``
(``config_name: 20231101.es``, ``data_files: [{split: train, path: 20231101.es/train-*}]``)
with ``dataset_info`` features ``id``/``url``/``title``/``text``, all strings.  Sources: the
Hub's file listing of wikimedia/wikipedia (``20231101.en/train-00000-of-00041.parquet`` … in
the ``download_checksums`` of a dataset_info.json built from it, and the parquet tree of
``20231101.es``), and the card of its sibling wikimedia/wikisource (same maintainers, same
``dataset_info`` per dated config).  Rows: the course's own Spanish articles
(``data/wikipedia_es_mini.jsonl``, see :data:`ROWS`), with Wikipedia-style ids and urls,
in two shards.
"""

from __future__ import annotations

from urllib.parse import quote

from rehearsal.hub import HubTree
from rehearsal.standins.common import tiny_qwen2, write_parquet, write_readme

MODELS = {  # Hub id -> seed (different random weights per size)
    "Qwen/Qwen2.5-1.5B-Instruct": 15,
    "Qwen/Qwen2.5-0.5B-Instruct": 5,
    "Qwen/Qwen2.5-3B-Instruct": 30,
}
WIKIPEDIA = "wikimedia/wikipedia"
CONFIG = "20231101.es"
SHARDS = 2


#: Rows of ``data/wikipedia_es_mini.jsonl`` in the stand-in dump: four articles the full
#: filters keep (one longer than the 4,000-character excerpt) and four they drop (two
#: disambiguation pages, a stub, one just under 1,500 characters).  Four kept articles are
#: one generation batch: the rehearsal runs every stage without 200 articles' time.
ROWS = ("es-mini-004", "es-mini-001", "es-mini-011", "es-mini-002", "es-mini-029",
        "es-mini-020", "es-mini-014", "es-mini-005")  # fmt: skip


def wikipedia_rows() -> list[dict[str, str]]:
    """The course's Spanish articles as rows of the real dump (id/url/title/text, strings)."""
    from utils.sft_dpo.wiki_corpus import read_jsonl

    by_id = {row["id"]: row for row in read_jsonl("wikipedia_es_mini.jsonl")}
    rows = []
    for n, row in enumerate((by_id[i] for i in ROWS), start=1):
        title = row["title"]
        rows.append({
            "id": str(1000 + n),
            "url": f"https://es.wikipedia.org/wiki/{quote(title.replace(' ', '_'))}",
            "title": title,
            "text": row["text"],
        })  # fmt: skip
    return rows


def build(hub: HubTree) -> None:
    for model_id, seed in MODELS.items():
        tiny_qwen2(hub.model(model_id), seed=seed)

    import pyarrow as pa

    repo = hub.dataset(WIKIPEDIA)
    schema = pa.schema([(name, pa.string()) for name in ("id", "url", "title", "text")])
    rows = wikipedia_rows()
    size = -(-len(rows) // SHARDS)
    for shard in range(SHARDS):
        write_parquet(
            repo / CONFIG / f"train-{shard:05d}-of-{SHARDS:05d}.parquet",
            rows[shard * size : (shard + 1) * size],
            schema,
        )
    features = [{"name": name, "dtype": "string"} for name in schema.names]
    write_readme(repo, {
        "language": ["es"],
        "license": ["cc-by-sa-3.0", "gfdl"],
        "task_categories": ["text-generation", "fill-mask"],
        "configs": [{"config_name": CONFIG, "data_files": [{"split": "train", "path": f"{CONFIG}/train-*"}]}],
        "dataset_info": [{"config_name": CONFIG, "features": features,
                          "splits": [{"name": "train", "num_examples": len(rows)}]}],
    }, "# Wikipedia (rehearsal stand-in: the course's Spanish articles in the 20231101.es layout)\n")  # fmt: skip
