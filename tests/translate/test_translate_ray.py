"""The translation engine on a Ray cluster (127.0.0.1 only), against the single-process run.

* The 129 real LLaVA rows of ``shared/real-data/llava_real.jsonl`` translated with
  ``--ray`` (two actors, one model each) give the same chunk files, commit log, quarantine
  and report keys as the single-process run.
* A Ray worker SIGKILLed mid-job is restarted by Ray and its chunk retried: the run ends
  normally with every row exactly once.

Both runs use the mini profile's real MarianMT (random weights), 4 tokens per sentence.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.services import ray_cluster, supervisor
from utils.translate.background import committed_chunks, start_background_run
from utils.translate.store import read_commit_log, read_jsonl

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[2]
#: ``shared/`` sits next to the clone (``ROOT.parent``), or next to the folder of git worktrees.
REAL = next(
    (
        p / "shared" / "real-data" / "llava_real.jsonl"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared").is_dir()
    ),
    ROOT.parent / "shared" / "real-data" / "llava_real.jsonl",
)
pytestmark = pytest.mark.skipif(not REAL.is_file(), reason=f"no real data next to the clone ({REAL} is missing)")
OPTIONS = ("--profile", "mini", "--chunk-size", "16", "--max-new-tokens", "4", "--threads", "1", "--no-progress")
#: What differs between two runs of the same job (timing, where, and per-worker cache hits).
VARYING = {"out_dir", "wall_s", "translate_s", "backend_s", "segments_per_s", "segments_sent", "cache_hit_rate"}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "utils.translate", *args], capture_output=True, text=True, cwd=ROOT, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def chunk_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "chunks").iterdir()) if not p.name.startswith(".")}


def test_the_whole_job_killed_resumes_exactly_once_and_its_local_cluster_is_not_left_behind(single, tmp_path):
    """Runs first (before the module's cluster exists): ``--ray local`` of a run killed with -9."""
    port = ray_cluster.port_from_env()
    if ray_cluster.status(port).running:
        pytest.skip(f"a Ray cluster already runs on {port}: this test needs to start its own")
    out = tmp_path / "ray"
    proc = start_background_run(REAL, out, *OPTIONS, "--limit", "64", "--ray", "local", "--ray-workers", "1")
    deadline = time.monotonic() + 600
    while committed_chunks(out) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, out.with_suffix(".log").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the driver: no chance to stop its cluster
    proc.wait()
    at_kill = committed_chunks(out)
    assert 1 <= at_kill < 4
    assert ray_cluster.status(port).running  # left behind by the killed run
    cli("run", str(REAL), str(out), *OPTIONS, "--limit", "64", "--ray", "local", "--ray-workers", "1")
    assert not ray_cluster.status(port).running  # adopted by the resumed run and stopped
    assert sorted(e["chunk"] for e in read_commit_log(out)) == [0, 1, 2, 3]
    expected = {
        k: v for k, v in chunk_files(single).items() if k.startswith(tuple(f"chunk-00000{i}." for i in range(4)))
    }
    assert {k: v for k, v in chunk_files(out).items() if k in expected} == expected


@pytest.fixture(scope="module")
def address():
    with ray_cluster.cluster("local", num_cpus=2) as address:
        yield address


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "out"
    cli("run", str(REAL), str(out), *OPTIONS)
    return out


def test_ray_run_is_identical_to_the_single_process_run(single, address, tmp_path):
    out = tmp_path / "ray"
    report = json.loads(cli("run", str(REAL), str(out), *OPTIONS, "--ray", address, "--ray-workers", "2").stdout)
    reference = json.loads((single / "report.json").read_text(encoding="utf-8"))
    assert report["complete"] and report["rows_in"] == 129
    assert report["rows_translated"] + report["rows_quarantined"] == 129
    assert chunk_files(out) == chunk_files(single)  # rows, quarantine and QA, byte for byte
    assert sorted(e["chunk"] for e in read_commit_log(out)) == sorted(e["chunk"] for e in read_commit_log(single))
    assert (out / "quarantine.jsonl").read_bytes() == (single / "quarantine.jsonl").read_bytes()
    assert set(report) == (set(reference) - {"qa"}) | {"qa_flag_counts_rows"}
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert set(saved) == set(reference)
    assert {k: v for k, v in saved.items() if k not in VARYING} == {
        k: v for k, v in reference.items() if k not in VARYING
    }
    # The driver's cache file got the workers' translations: a later run in one process reuses them.
    assert (out / "cache.sqlite").stat().st_size > 0


def _chunk_workers(head_pid: int) -> list[int]:
    pids = []
    for pid in supervisor.descendants(head_pid):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(b"ray::ChunkWorker"):
            pids.append(pid)
    return pids


def test_a_sigkilled_ray_worker_loses_and_duplicates_no_row(single, address, tmp_path):
    out = tmp_path / "ray"
    proc = start_background_run(REAL, out, *OPTIONS, "--ray", address, "--ray-workers", "2")
    head = ray_cluster.status(int(address.rsplit(":", 1)[1])).pid
    assert head is not None
    deadline = time.monotonic() + 600
    while committed_chunks(out) < 1:  # the actors work (a chunk is in flight on each)
        assert proc.poll() is None and time.monotonic() < deadline, out.with_suffix(".log").read_text()
        time.sleep(0.05)
    victims = _chunk_workers(head)
    assert victims, "no Ray worker process of ChunkWorker found"
    os.kill(victims[0], signal.SIGKILL)
    at_kill = committed_chunks(out)
    assert at_kill < 9 and proc.poll() is None, "the job ended before the kill: nothing was tested"
    assert proc.wait(timeout=600) == 0, out.with_suffix(".log").read_text()[-3000:]
    commits = [e["chunk"] for e in read_commit_log(out)]
    assert sorted(commits) == list(range(9))  # every chunk committed exactly once
    rows = [r["row_index"] for p in sorted((out / "chunks").glob("chunk-*[0-9].jsonl")) for r in read_jsonl(p)]
    held = [q["row_index"] for q in read_jsonl(out / "quarantine.jsonl")]
    assert sorted(rows + held) == list(range(129))  # 0 rows lost, 0 duplicated
    assert chunk_files(out) == chunk_files(single)
