"""The engine with fault-injecting backends: retries, quarantine, cache, resume, shards, merge.

The backends here are fakes on purpose: they inject the faults (transient errors, poison
inputs, lost numbers) that real servers produce rarely and unpredictably.  The protection
tests also run with the real MT backends (seq2seq and CTranslate2: the mini model's random
weights lose numbers by themselves); the rest of the real backends' behaviour is tested in
test_translate_backends.py, test_translate_ct2.py and test_translate_cli.py.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from utils.core.retry import RetryPolicy, TransientError
from utils.core.settings import get_settings
from utils.translate.engine import (
    BackendUnavailableError,
    SegmentTranslator,
    merge_outputs,
    run_translation,
)
from utils.translate.ray_runner import ChunkWorker
from utils.translate.records import TranslateError, input_file
from utils.translate.store import ChunkStore, Shard

MINI = input_file(get_settings("mini").translate)  # data/llava_instruct_mini.json
FAST_RETRY = RetryPolicy(attempts=8, base_delay=0.0, max_delay=0.0)


class FakeSpanish:
    """Deterministic stand-in translator: tags each sentence; counts what it translated."""

    name = "fake-es"

    def __init__(self, batch_size: int = 8) -> None:
        self.batch_size = batch_size
        self.calls = 0
        self.translated: Counter[str] = Counter()

    def translate(self, texts):
        self.calls += 1
        self.translated.update(texts)
        return [f"ES[{t}]" for t in texts]


class Flaky(FakeSpanish):
    """Fails ``rate`` of the calls with a transient error (seeded, so reproducible)."""

    def __init__(self, rate: float = 0.3, seed: int = 0, batch_size: int = 8) -> None:
        super().__init__(batch_size)
        self.rng = random.Random(seed)
        self.rate = rate
        self.failures = 0

    def translate(self, texts):
        if self.rng.random() < self.rate:
            self.failures += 1
            raise TransientError("503 Service Unavailable (injected)")
        return super().translate(texts)


class Poisoned(FakeSpanish):
    """Any batch containing the word POISON fails permanently (like a 400 from a server)."""

    def translate(self, texts):
        if any("POISON" in t for t in texts):
            raise ValueError("400 Bad Request: input rejected")
        return super().translate(texts)


class DropsNumbers(FakeSpanish):
    """Loses digits, as MT models sometimes do: forces the piece-by-piece fallback."""

    def translate(self, texts):
        self.calls += 1
        self.translated.update(texts)
        return [re.sub(r"\d", "", f"ES[{t}]") for t in texts]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _input_rows() -> list:
    return json.loads(MINI.read_text(encoding="utf-8"))


def test_every_row_is_translated_exactly_once_despite_30_percent_transient_failures(tmp_path):
    backend = Flaky(rate=0.3, seed=1)
    report = run_translation(MINI, tmp_path / "out", backend, chunk_size=7, retry=FAST_RETRY, progress=False)
    assert backend.failures > 10, "the fault injector must actually fire"
    assert report["retries"] == backend.failures
    assert report["complete"] and report["rows_in"] == len(_input_rows())
    summary = merge_outputs([tmp_path / "out"], tmp_path / "result.jsonl")
    rows = _rows(tmp_path / "result.jsonl")
    quarantined = _rows(tmp_path / "result.quarantine.jsonl")
    indices = Counter(r["row_index"] for r in rows + quarantined)
    assert sorted(indices) == list(range(len(_input_rows()))) and set(indices.values()) == {1}
    assert summary["rows_translated"] == report["rows_translated"] == len(rows)
    # Exactly-once at the sentence level too: each distinct sentence reached the model once.
    assert set(backend.translated.values()) == {1}
    # Only the malformed rows are quarantined, none because of the injected failures.
    assert all("la traducción falló" not in q["reason"] for q in quarantined)


#: Rows of the mini data the real models translate in the parametrized tests (fakes do all).
REAL_ROWS = 24


def _real_backend(kind: str):
    """The mini profile's MT model through ``kind``, generating few tokens (it is random anyway)."""
    from utils.translate.backends import make_backend

    return make_backend(kind, settings=get_settings("mini"), batch_size=16, max_new_tokens=4, device="cpu")


@pytest.fixture(scope="module")
def real_backends() -> dict:
    return {}


@pytest.fixture
def translator(request, real_backends):
    """(backend, row limit): a fake, or a real backend sharing the protection and QA code."""
    kind = request.param
    if kind == "fake":
        return None, None
    if kind not in real_backends:
        real_backends[kind] = _real_backend(kind)
    return real_backends[kind], REAL_ROWS


@pytest.mark.parametrize("translator", ["fake", "seq2seq", "ctranslate2"], indirect=True)
def test_translations_keep_the_structure_and_the_english(tmp_path, translator):
    backend, limit = translator
    run_translation(MINI, tmp_path / "out", backend or FakeSpanish(), chunk_size=10, limit=limit, progress=False)
    merge_outputs([tmp_path / "out"], tmp_path / "result.jsonl")
    source = _input_rows()
    for row in _rows(tmp_path / "result.jsonl"):
        original = source[row["row_index"]]
        assert row["id"] == original["id"] and row.get("image") == original.get("image")
        assert row["conversations_en"] == original["conversations"]
        for es, en in zip(row["conversations"], row["conversations_en"], strict=True):
            assert es["from"] == en["from"] and isinstance(es["value"], str)
            assert es["value"].count("<image>") == en["value"].count("<image>")
            assert es["value"].startswith("<image>") == en["value"].startswith("<image>")
            assert es["value"].endswith("<image>") == en["value"].endswith("<image>")
            assert es["value"].count("\n") == en["value"].count("\n")
            assert re.findall(r"```.*?```", es["value"], re.DOTALL) == re.findall(r"```.*?```", en["value"], re.DOTALL)


def test_loadable_with_datasets(tmp_path):
    from datasets import load_dataset

    run_translation(MINI, tmp_path / "out", FakeSpanish(), chunk_size=10, progress=False)
    merge_outputs([tmp_path / "out"], tmp_path / "result.jsonl")
    dataset = load_dataset("json", data_files=str(tmp_path / "result.jsonl"), split="train")
    assert len(dataset) == len(_rows(tmp_path / "result.jsonl"))
    assert {"id", "conversations", "conversations_en", "row_index"} <= set(dataset.column_names)
    assert dataset[0]["conversations"][0]["from"] == "human"


def test_malformed_rows_are_quarantined_with_reasons_and_the_job_goes_on(tmp_path):
    report = run_translation(MINI, tmp_path / "out", FakeSpanish(), chunk_size=10, progress=False)
    quarantine = _rows(tmp_path / "out" / "quarantine.jsonl")
    reasons = {q["id"]: q["reason"] for q in quarantine}
    assert reasons == {
        "000000900001": "turno 1: 'value' es null; se esperaba un texto",
        "000000900002": "falta la clave 'conversations'",
        "000000900003": "turno 1: 'value' es dict; se esperaba un texto",
        "000000900004": "'conversations' es un str; se esperaba una lista de turnos",
    }
    assert report["rows_quarantined"] == 4 and report["rows_translated"] == len(_input_rows()) - 4
    saved = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert saved["rows_quarantined"] == 4 and saved["complete"] is True


def test_a_sentence_that_keeps_failing_quarantines_only_its_row(tmp_path):
    rows = _input_rows()[:12]
    rows[5]["conversations"][1]["value"] = "This answer contains POISON. And a normal sentence."
    source = tmp_path / "in.json"
    source.write_text(json.dumps(rows), encoding="utf-8")
    backend = Poisoned(batch_size=16)
    report = run_translation(source, tmp_path / "out", backend, chunk_size=12, retry=FAST_RETRY, progress=False)
    quarantine = _rows(tmp_path / "out" / "quarantine.jsonl")
    assert [q["row_index"] for q in quarantine] == [5]
    assert "la traducción falló" in quarantine[0]["reason"] and "400 Bad Request" in quarantine[0]["reason"]
    assert report["rows_translated"] == 11 and report["failed_segments"] == 1
    # The other sentences of the failing batch were still translated (bisection).
    assert backend.translated["And a normal sentence."] == 1


def test_a_backend_that_is_down_stops_the_run_without_losing_committed_chunks(tmp_path):
    class GoesDown(FakeSpanish):
        def translate(self, texts):
            if self.calls >= 3:
                raise ConnectionError("connection refused")
            return super().translate(texts)

    with pytest.raises(BackendUnavailableError, match="vuelve a ejecutar el mismo comando para reanudar"):
        run_translation(
            MINI,
            tmp_path / "out",
            GoesDown(batch_size=4),
            chunk_size=2,
            retry=FAST_RETRY,
            max_consecutive_failures=3,
            progress=False,
        )
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] is False and report["chunks_done"] >= 1
    resumed = run_translation(MINI, tmp_path / "out", FakeSpanish(), chunk_size=2, progress=False)
    assert resumed["complete"] and resumed["chunks_resumed"] == report["chunks_done"]


@pytest.mark.parametrize("translator", ["fake", "seq2seq", "ctranslate2"], indirect=True)
def test_lost_numbers_fall_back_to_piece_by_piece_translation(tmp_path, translator):
    backend, limit = translator
    report = run_translation(
        MINI, tmp_path / "out", backend or DropsNumbers(), chunk_size=66, limit=limit, progress=False
    )
    assert report["fallbacks"] > 0
    merge_outputs([tmp_path / "out"], tmp_path / "result.jsonl")
    number = re.compile(r"(?<![\w.,])\d+(?:[.,:/]\d+)*(?!\w)")
    for row in _rows(tmp_path / "result.jsonl"):
        for es, en in zip(row["conversations"], row["conversations_en"], strict=True):
            prose = lambda text: re.sub(r"```.*?```", "", text, flags=re.DOTALL)
            assert Counter(number.findall(prose(en["value"]))) == Counter(number.findall(prose(es["value"])))
    assert report["qa"]["flag_counts_turns"]["numbers"] == 0


def test_repeated_sentences_are_translated_once_and_the_cache_survives_a_restart(tmp_path):
    backend = FakeSpanish()
    first = run_translation(MINI, tmp_path / "out", backend, chunk_size=66, progress=False)
    assert first["cache_hit_rate"] > 0 and set(backend.translated.values()) == {1}
    assert first["segments_sent"] == len(backend.translated) < first["requests"]
    # Same backend, new folder but the old cache file: nothing reaches the model again.
    (tmp_path / "out2").mkdir()
    (tmp_path / "out2" / "cache.sqlite").write_bytes((tmp_path / "out" / "cache.sqlite").read_bytes())
    again = FakeSpanish()
    second = run_translation(MINI, tmp_path / "out2", again, chunk_size=66, progress=False)
    assert again.calls == 0 and second["cache_hit_rate"] == 1.0


def test_resume_skips_finished_chunks_and_redoes_damaged_ones(tmp_path):
    out = tmp_path / "out"
    run_translation(MINI, out, FakeSpanish(), chunk_size=10, progress=False)
    records = ChunkStore.open(out).records
    assert len(records) == 7  # 66 rows: six chunks of 10 and the last one of 6
    assert records[6].rows == (60, 66)
    damaged = out / records[3].file
    damaged.write_text(damaged.read_text(encoding="utf-8")[:-40], encoding="utf-8")  # truncated
    (out / "chunks" / ".chunk-000004.jsonl.x.tmp").write_text("half a chunk", encoding="utf-8")
    backend = FakeSpanish()
    report = run_translation(MINI, out, backend, chunk_size=10, progress=False)
    assert report["chunks_this_run"] == 1 and report["chunks_resumed"] == 6
    assert backend.calls == 0, "the cache already holds chunk 3's sentences"
    assert not list((out / "chunks").glob(".*.tmp")), "leftovers of killed writers are removed"
    merge_outputs([out], tmp_path / "result.jsonl")  # coverage check passes


def test_resume_refuses_other_settings_with_a_clear_message(tmp_path):
    run_translation(MINI, tmp_path / "out", FakeSpanish(), chunk_size=10, limit=20, progress=False)
    with pytest.raises(TranslateError, match=r"chunk_size: la carpeta tiene 10, esta ejecución tiene 5"):
        run_translation(MINI, tmp_path / "out", FakeSpanish(), chunk_size=5, limit=20, progress=False)
    other = FakeSpanish()
    other.name = "another-model"
    with pytest.raises(TranslateError, match="backend: la carpeta tiene fake-es"):
        run_translation(MINI, tmp_path / "out", other, chunk_size=10, limit=20, progress=False)


def test_two_writers_cannot_share_an_output_folder(tmp_path):
    from utils.translate.store import RunIdentity

    identity = RunIdentity("sha", "in.json", 10, 5, Shard(), "fake")
    first = ChunkStore(tmp_path / "out", identity)
    with pytest.raises(TranslateError, match="Otra ejecución está escribiendo"):
        ChunkStore(tmp_path / "out", identity)
    first.close()
    ChunkStore(tmp_path / "out", identity).close()


def test_shards_cover_everything_once_and_merge_checks_it(tmp_path):
    dirs = [tmp_path / f"shard{i}" for i in range(3)]
    reports = [
        run_translation(MINI, d, FakeSpanish(), chunk_size=5, shard=f"{i}/3", progress=False)
        for i, d in enumerate(dirs)
    ]
    assert sum(r["rows_in"] for r in reports) == len(_input_rows())
    with pytest.raises(TranslateError, match=r"Faltan .*parte\(s\) 1/3 con el mismo comando"):
        merge_outputs([dirs[0], dirs[2]], tmp_path / "partial.jsonl")
    assert not (tmp_path / "partial.jsonl").exists()
    with pytest.raises(TranslateError, match="más de una carpeta"):
        merge_outputs([dirs[0], dirs[1], dirs[2], dirs[0]], tmp_path / "dup.jsonl")
    summary = merge_outputs(dirs, tmp_path / "result.jsonl")
    rows = _rows(tmp_path / "result.jsonl") + _rows(tmp_path / "result.quarantine.jsonl")
    assert sorted(r["row_index"] for r in rows) == list(range(len(_input_rows())))
    assert summary["rows_translated"] + summary["rows_quarantined"] == len(_input_rows())
    whole = tmp_path / "whole"
    run_translation(MINI, whole, FakeSpanish(), chunk_size=5, progress=False)
    merge_outputs([whole], tmp_path / "whole.jsonl")
    assert (tmp_path / "whole.jsonl").read_bytes() == (tmp_path / "result.jsonl").read_bytes()


def test_merge_refuses_folders_of_different_runs(tmp_path):
    run_translation(MINI, tmp_path / "a", FakeSpanish(), chunk_size=5, shard="0/2", progress=False)
    run_translation(MINI, tmp_path / "b", FakeSpanish(), chunk_size=6, shard="1/2", progress=False)
    with pytest.raises(TranslateError, match="ejecuciones distintas"):
        merge_outputs([tmp_path / "a", tmp_path / "b"], tmp_path / "r.jsonl")
    with pytest.raises(TranslateError, match="no es una carpeta de salida"):
        merge_outputs([tmp_path], tmp_path / "r.jsonl")


def test_invalid_shards_are_explained():
    for text in ("2/2", "-1/3", "1-3", "a/b", "0/0"):
        with pytest.raises(TranslateError, match="i/n"):
            Shard.parse(text)
    assert Shard.parse("1/4").owns(5) and not Shard.parse("1/4").owns(4)


def test_translator_sorts_by_length_and_batches():
    seen = []

    class Recorder(FakeSpanish):
        def translate(self, texts):
            seen.append(list(texts))
            return super().translate(texts)

    translator = SegmentTranslator(Recorder(batch_size=3))
    texts = ["ccc ccc", "a", "bb bb", "a", "dddd dddd", "ee"]
    out = translator.translate(texts)
    assert out["a"] == "ES[a]" and len(out) == 5
    assert seen == [["a", "ee", "bb bb"], ["ccc ccc", "dddd dddd"]]
    assert translator.stats["segments"] == 6 and translator.stats["sent"] == 5


class TwiceWorkers:
    """Chunk workers that deliver every chunk twice, as a worker retried by Ray may do."""

    def __init__(self) -> None:
        self.chunk_worker = ChunkWorker(FakeSpanish, FAST_RETRY, 5)  # the Ray actor's class, in this process
        self.name = self.chunk_worker.backend.name

    def map_chunks(self, jobs, *, rules, qa_config):
        for chunk, objects, first in jobs:
            result = self.chunk_worker.translate(chunk, objects, first, rules, qa_config)
            yield result
            yield result


def test_a_chunk_translated_twice_elsewhere_is_committed_once(tmp_path):
    reference = run_translation(MINI, tmp_path / "one", FakeSpanish(), chunk_size=8, progress=False)
    report = run_translation(MINI, tmp_path / "twice", None, chunk_size=8, progress=False, workers=TwiceWorkers())
    chunks = [json.loads(line)["chunk"] for line in (tmp_path / "twice" / "commits.jsonl").read_text().splitlines()]
    assert sorted(chunks) == list(range(reference["chunks_total"]))  # once each
    for name in ("rows_translated", "rows_quarantined", "chunks_done", "segments", "complete"):
        assert report[name] == reference[name], name
    merged = merge_outputs([tmp_path / "twice"], tmp_path / "twice.jsonl")
    assert merged["rows_translated"] == reference["rows_translated"]
    # The workers' translations reached the driver's cache: a resume in one process would reuse them.
    from utils.translate.store import TranslationCache

    sizes = []
    for folder in ("one", "twice"):
        cache = TranslationCache(tmp_path / folder / "cache.sqlite", "fake-es")
        sizes.append(len(cache))
        cache.close()
    assert sizes[1] == sizes[0] > 0
