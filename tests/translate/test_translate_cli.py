"""The command line, for real: kill -9, Ctrl-C, SIGTERM and a full disk mid-run, resume, shard, merge.

These tests run ``python -m utils.translate`` in child processes with the mini profile's
real seq2seq backend (MarianMT with the opus-mt-en-es architecture, random weights).
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from utils.core.settings import get_settings
from utils.translate.background import committed_chunks, kill_after_chunks, start_background_run
from utils.translate.records import input_file
from utils.translate.store import ChunkStore, read_commit_log, read_jsonl, sha256_bytes

ROOT = Path(__file__).resolve().parents[2]
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
    from utils.core.assets import resolve_model

    resolve_model("local:opus-mt-en-es-random")  # build once before timing-sensitive kills


def test_help_lists_the_contract():
    for args, words in [
        ((), ["run", "merge"]),
        (("run",), ["INPUT", "OUT_DIR", "--backend", "--chunk-size", "--shard"]),
        (("merge",), ["OUT_DIR", "RESULT.jsonl"]),
    ]:
        out = cli(*args, "--help").stdout
        assert all(word in out for word in words), out


def test_precision_option_reaches_the_model_and_the_report(tmp_path):
    report = json.loads(
        cli(
            "run",
            str(MINI),
            str(tmp_path / "out"),
            "--no-progress",
            *FAST[:2],
            "--limit",
            "4",
            *FAST[4:],
            "--dtype",
            "float32",
        ).stdout
    )
    assert report["complete"] and report["backend"].endswith(",dtype=float32")
    assert "--dtype" in cli("run", "--help").stdout


@pytest.mark.slow
def test_kill_9_mid_run_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    out = tmp_path / "out"
    proc = start_background_run(MINI, out, *FAST)
    done_at_kill = kill_after_chunks(proc, out, chunks=2, delay=random.Random(7).uniform(0.05, 0.5))
    assert proc.returncode == -9
    assert 2 <= done_at_kill < 10, "the kill must land mid-run"
    # Whatever the commit log lists is complete and intact; nothing half-written counts.
    for entry in read_commit_log(out):
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
    assert missing.returncode == 1 and "parte(s) 1/2 con el mismo comando" in missing.stderr
    merged = json.loads(cli("merge", str(tmp_path / "s0"), str(tmp_path / "s1"), str(tmp_path / "r.jsonl")).stdout)
    assert merged["rows_translated"] + merged["rows_quarantined"] == rows


def test_bad_input_exits_1_with_an_actionable_message(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1}', encoding="utf-8")
    proc = cli("run", str(broken), str(tmp_path / "out"), "--profile", "mini", check=False)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "no es JSON válido" in proc.stderr and "Traceback" not in proc.stderr
    bad_shard = cli("run", str(MINI), str(tmp_path / "out"), "--shard", "3/2", check=False)
    assert bad_shard.returncode == 1 and "0 ≤ i < n" in bad_shard.stderr


def _exactly_once(out: Path, result: Path, rows: int = ROWS) -> None:
    cli("merge", str(out), str(result))
    quarantine = result.with_name(result.name.removesuffix(".jsonl") + ".quarantine.jsonl")
    indices = [e["row_index"] for path in (result, quarantine) for e in read_jsonl(path)]
    assert sorted(indices) == list(range(rows))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C (SIGINT)"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_ctrl_c_or_sigterm_stops_cleanly_and_the_same_command_resumes(tmp_path, sig, code, name):
    out = tmp_path / "out"
    proc = start_background_run(MINI, out, *FAST)
    done = kill_after_chunks(proc, out, chunks=2, delay=random.Random(sig).uniform(0.05, 0.5), sig=sig)
    log = out.with_suffix(".log").read_text(encoding="utf-8")
    assert proc.returncode == code, log[-2000:]
    assert f"Interrumpido por {name}" in log and "vuelve a ejecutar el mismo comando para reanudar" in log
    assert "Traceback" not in log
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    logged = {entry["chunk"] for entry in read_commit_log(out)}
    assert report["complete"] is False and report["chunks_done"] == len(logged) >= done >= 2
    resumed = json.loads(cli("run", str(MINI), str(out), "--no-progress", *FAST).stdout)
    assert resumed["complete"] and resumed["chunks_resumed"] == len(logged)
    assert resumed["chunks_resumed"] + resumed["chunks_this_run"] == 10
    _exactly_once(out, tmp_path / "result.jsonl")


@pytest.mark.slow
def test_a_full_disk_stops_cleanly_and_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    import utils.translate.store as store_module
    from utils.translate.__main__ import main

    out = tmp_path / "out"
    args = ["run", str(MINI), str(out), "--no-progress", *FAST]
    real_write = store_module.atomic_write_bytes

    def disk_fills_up(path, data, **kwargs):  # the disk is full from the 4th chunk's files on
        if path.name.startswith("chunk-") and int(path.name[6:12]) >= 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_write(path, data, **kwargs)

    monkeypatch.setattr(store_module, "atomic_write_bytes", disk_fills_up)
    monkeypatch.chdir(ROOT)
    assert main(args) == 75
    err = capsys.readouterr().err
    assert "No queda espacio en el disco" in err and "vuelve a ejecutar el mismo comando para reanudar" in err
    assert "Traceback" not in err
    assert {e["chunk"] for e in read_commit_log(out)} == {0, 1, 2}
    assert not list((out / "chunks").glob(".*.tmp")) and not (out / "chunks" / "chunk-000003.jsonl").exists()
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["chunks_done"] == 3

    monkeypatch.setattr(store_module, "atomic_write_bytes", real_write)  # space freed
    assert main(args) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["complete"] and resumed["chunks_resumed"] == 3 and resumed["chunks_this_run"] == 7
    _exactly_once(out, tmp_path / "result.jsonl")


@pytest.mark.parametrize(
    ("option", "value"),
    [("--limit", "-1"), ("--limit", "0"), ("--chunk-size", "0"), ("--batch-size", "-3"), ("--chunk-size", "diez")],
)
def test_bad_numbers_are_refused_not_silently_changed(tmp_path, option, value):
    proc = cli("run", str(MINI), str(tmp_path / "out"), "--profile", "mini", option, value, check=False)
    assert proc.returncode == 2 and option in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_bad_out_dir_is_reported_before_the_model_loads(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder", encoding="utf-8")
    # The model does not exist: if it were loaded first, the error would be about the model.
    nowhere = ("--profile", "mini", "--model", "local:no-such-model", "--limit", "4")
    for out_dir, message in (
        (a_file, "es un fichero, no una carpeta"),
        (a_file / "out", "una parte de la ruta es un fichero"),
    ):
        proc = cli("run", str(MINI), str(out_dir), *nowhere, check=False)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    read_only = _read_only_dir(tmp_path)
    proc = cli("run", str(MINI), str(read_only / "out"), *nowhere, check=False)
    assert proc.returncode == 1 and "No se puede escribir en la carpeta de salida" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _read_only_dir(tmp_path: Path) -> Path:
    """A folder this process cannot write to: chmod for users, a read-only tmpfs for root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return folder
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    atexit.register(subprocess.run, ["umount", str(folder)], capture_output=True)
    return folder


@pytest.mark.parametrize(
    ("content", "message"), [(b"", "no tiene ninguna fila"), (b"oops\n{]\n", "Ninguna de las 2 filas")]
)
def test_an_empty_or_garbage_input_exits_1_instead_of_complete(tmp_path, content, message):
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    proc = cli("run", str(source), str(tmp_path / "out"), "--profile", "mini", check=False)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert '"complete": true' not in proc.stdout


@pytest.mark.slow
def test_a_really_full_tmpfs_stops_cleanly_and_resumes_once_space_is_freed(tmp_path):
    """The same as above with a real ENOSPC: OUT_DIR on a 96 KiB tmpfs (only where mount is allowed)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        out = mnt / "out"
        full = cli("run", str(MINI), str(out), "--no-progress", *FAST, check=False)
        assert full.returncode == 75, full.stderr[-2000:]
        assert "No queda espacio en el disco" in full.stderr and "Traceback" not in full.stderr
        done = {e["chunk"] for e in read_commit_log(out)}
        assert 0 < len(done) < 10
        subprocess.run(["mount", "-o", "remount,size=20m", str(mnt)], check=True)
        resumed = json.loads(cli("run", str(MINI), str(out), "--no-progress", *FAST).stdout)
        assert resumed["complete"] and resumed["chunks_resumed"] == len(done)
        _exactly_once(out, tmp_path / "result.jsonl")
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_a_bad_ray_address_is_refused_before_anything_starts(tmp_path):
    proc = cli("run", str(MINI), str(tmp_path / "out"), *FAST, "--ray", "cluster-without-port", check=False)
    assert proc.returncode == 1, proc.stderr
    assert "--ray local" in proc.stderr and "HOST:PUERTO" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing created for a command that cannot run
    assert "--ray" in cli("run", "--help").stdout
