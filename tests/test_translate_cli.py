"""The command line, for real: kill -9 in the middle of a run, resume, shard, merge.

These tests run ``python -m utils.translate`` in child processes with the mini profile's
real seq2seq backend (MarianMT with the opus-mt-en-es architecture, random weights).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from utils.settings import get_settings
from utils.translate.background import committed_chunks, kill_after_chunks, start_background_run
from utils.translate.records import input_file
from utils.translate.store import ChunkStore, load_manifest, sha256_bytes

ROOT = Path(__file__).resolve().parents[1]
MINI = input_file(get_settings("mini").translate)  # data/llava_instruct_mini.json
ROWS = 40
#: Small and fast: 4 generated tokens per sentence, 4 rows per chunk → 10 chunks.
FAST = ("--profile", "mini", "--limit", str(ROWS), "--chunk-size", "4", "--max-new-tokens", "4", "--batch-size", "16")


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "utils.translate", *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module", autouse=True)
def built_model():
    from utils.assets import resolve_model

    resolve_model("local:opus-mt-en-es-random")  # build once before timing-sensitive kills


def test_help_lists_the_contract():
    for args, words in [((), ["run", "merge"]),
                        (("run",), ["INPUT", "OUT_DIR", "--backend", "--chunk-size", "--shard"]),
                        (("merge",), ["OUT_DIR", "RESULT.jsonl"])]:
        out = cli(*args, "--help").stdout
        assert all(word in out for word in words), out


def test_precision_option_reaches_the_model_and_the_report(tmp_path):
    report = json.loads(cli("run", str(MINI), str(tmp_path / "out"), "--no-progress", *FAST[:2], "--limit", "4",
                            *FAST[4:], "--dtype", "float32").stdout)
    assert report["complete"] and report["backend"].endswith(",dtype=float32")
    assert "--dtype" in cli("run", "--help").stdout


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    out = tmp_path / "out"
    proc = start_background_run(MINI, out, *FAST)
    done_at_kill = kill_after_chunks(proc, out, chunks=2, delay=random.Random(7).uniform(0.05, 0.5))
    assert proc.returncode == -9
    assert 2 <= done_at_kill < 10, "the kill must land mid-run"
    # Whatever the manifest lists is complete and intact; nothing half-written counts.
    manifest = load_manifest(out)
    for entry in manifest["chunks"].values():
        assert sha256_bytes((out / entry["file"]).read_bytes()) == entry["sha256"]
    assert not (out / "report.json").exists(), "kill -9 gives no chance to write the report"

    resumed = json.loads(cli("run", str(MINI), str(out), "--no-progress", *FAST).stdout)
    assert resumed["complete"] and resumed["chunks_resumed"] == done_at_kill
    assert resumed["chunks_this_run"] == 10 - done_at_kill
    assert resumed["rows_translated"] + resumed["rows_quarantined"] == ROWS

    merged = json.loads(cli("merge", str(out), str(tmp_path / "result.jsonl")).stdout)
    lines = (tmp_path / "result.jsonl").read_text(encoding="utf-8").splitlines()
    indices = [json.loads(line)["row_index"] for line in lines]
    assert sorted(indices) == list(range(ROWS)) and merged["rows_translated"] == ROWS


@pytest.mark.slow
def test_shards_in_separate_processes_then_merge(tmp_path):
    rows = 18  # chunks of 4 → 5 chunks, the last one with 2 rows
    args = (*FAST[:2], "--limit", str(rows), *FAST[4:])
    procs = [start_background_run(MINI, tmp_path / f"s{i}", "--shard", f"{i}/2", *args) for i in range(2)]
    for proc in procs:
        assert proc.wait(timeout=600) == 0, (tmp_path / "s0.log").read_text(encoding="utf-8")[-2000:]
    assert [committed_chunks(tmp_path / f"s{i}") for i in range(2)] == [3, 2]
    assert sorted(ChunkStore.open(tmp_path / "s0").records) == [0, 2, 4]
    assert ChunkStore.open(tmp_path / "s0").records[4].rows == (16, 18)  # the last partial chunk
    missing = cli("merge", str(tmp_path / "s0"), str(tmp_path / "r.jsonl"), check=False)
    assert missing.returncode == 1 and "Run shard(s) 1/2 again" in missing.stderr
    merged = json.loads(cli("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), str(tmp_path / "r.jsonl")).stdout)
    assert merged["rows_translated"] + merged["rows_quarantined"] == rows


def test_bad_input_exits_1_with_an_actionable_message(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1}', encoding="utf-8")
    proc = cli("run", str(broken), str(tmp_path / "out"), "--profile", "mini", check=False)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "not valid JSON" in proc.stderr and "Traceback" not in proc.stderr
    bad_shard = cli("run", str(MINI), str(tmp_path / "out"), "--shard", "3/2", check=False)
    assert bad_shard.returncode == 1 and "0 ≤ i < n" in bad_shard.stderr
