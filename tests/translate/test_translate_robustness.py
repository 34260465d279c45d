"""Hostile and careless use of the translation engine (issue 15): nothing lost, nothing silently wrong.

* ``merge`` never overwrites its own inputs;
* rows that failed only transiently are translated again by the next run;
* each commit appends a short line: its cost does not grow with the chunks already done;
* notebook 01 runs in a private work folder, so two kernels never delete each other's files;
* bad files and bad options get a Spanish message, not a traceback or a silent "complete".

The CLI tests under signals are in test_translate_cli.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from utils.core.retry import RetryPolicy, TransientError
from utils.core.settings import get_settings
from utils.translate.engine import merge_outputs, run_translation
from utils.translate.records import TranslateError, input_file, load_rows
from utils.translate.store import COMMIT_LOG, AppendLog, ChunkStore, RunIdentity, Shard, read_commit_log, read_jsonl

ROOT = Path(__file__).resolve().parents[2]
MINI = input_file(get_settings("mini").translate)  # data/llava_instruct_mini.json
FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)


class FakeSpanish:
    """Deterministic stand-in translator (tags each sentence)."""

    name = "fake-es"
    batch_size = 8

    def translate(self, texts):
        return [f"ES[{t}]" for t in texts]


class TimesOutOn(FakeSpanish):
    """Every batch holding ``word`` times out (a transient error), while ``down`` is true."""

    def __init__(self, word: str) -> None:
        self.word = word
        self.down = True

    def translate(self, texts):
        if self.down and any(self.word in t for t in texts):
            raise TransientError("504 Gateway Timeout (injected)")
        return super().translate(texts)


def _indices(*paths: Path) -> list[int]:
    return sorted(entry["row_index"] for path in paths for entry in read_jsonl(path))


# --------------------------------------------------------------------------- merge


def test_merge_refuses_to_overwrite_its_own_inputs(tmp_path):
    source = tmp_path / "input.json"
    source.write_bytes(MINI.read_bytes())
    out = tmp_path / "out"
    run_translation(source, out, FakeSpanish(), chunk_size=10, progress=False)
    manifest = (out / "manifest.json").read_bytes()
    for target in (out / "manifest.json", out / "chunks" / "x.jsonl", out):
        with pytest.raises(TranslateError, match="dentro de la carpeta de salida"):
            merge_outputs([out], target)
    assert (out / "manifest.json").read_bytes() == manifest
    with pytest.raises(TranslateError, match="es el fichero de entrada"):
        merge_outputs([out], source, force=True)  # not even with force
    assert source.read_bytes() == MINI.read_bytes()

    merge_outputs([out], tmp_path / "result.jsonl")
    (tmp_path / "result.jsonl").write_text("my own edits\n", encoding="utf-8")
    with pytest.raises(TranslateError, match="ya existe.*--force"):
        merge_outputs([out], tmp_path / "result.jsonl")
    assert (tmp_path / "result.jsonl").read_text(encoding="utf-8") == "my own edits\n"
    merge_outputs([out], tmp_path / "result.jsonl", force=True)
    assert len(_indices(tmp_path / "result.jsonl", tmp_path / "result.quarantine.jsonl")) == len(load_rows(MINI))
    # The folder is still a valid run: resuming it finds every chunk done.
    assert run_translation(source, out, FakeSpanish(), chunk_size=10, progress=False)["chunks_this_run"] == 0


def test_merge_cli_refuses_a_result_inside_the_out_dir(tmp_path):
    out = tmp_path / "out"
    run_translation(MINI, out, FakeSpanish(), chunk_size=33, progress=False)
    before = (out / "manifest.json").read_bytes()
    proc = subprocess.run(
        [sys.executable, "-m", "utils.translate", "merge", str(out), str(out / "manifest.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 1 and "dentro de la carpeta de salida" in proc.stderr
    assert "Traceback" not in proc.stderr and (out / "manifest.json").read_bytes() == before


# --------------------------------------------------------------------------- transient failures


def _with_sentence(tmp_path: Path, sentence: str) -> Path:
    rows = load_rows(MINI)[:12]
    rows[5]["conversations"][1]["value"] = f"{sentence} And a normal sentence."
    source = tmp_path / "in.json"
    source.write_text(json.dumps(rows), encoding="utf-8")
    return source


def test_rows_that_failed_transiently_are_translated_by_the_next_run(tmp_path):
    source, out = _with_sentence(tmp_path, "The server times out here."), tmp_path / "out"
    backend = TimesOutOn("times out")
    first = run_translation(source, out, backend, chunk_size=4, retry=FAST_RETRY, progress=False)
    assert first["complete"] is False and first["chunks_deferred"] == [1]  # rows 4-7 hold row 5
    assert first["chunks_done"] == 2 and first["rows_quarantined"] == 0
    assert not (out / "chunks" / "chunk-000001.jsonl").exists(), "the chunk with a transient failure is not committed"

    backend.down = False  # the server recovers
    second = run_translation(source, out, backend, chunk_size=4, retry=FAST_RETRY, progress=False)
    assert second["complete"] and second["chunks_this_run"] == 1 and second["chunks_deferred"] == []
    merge_outputs([out], tmp_path / "result.jsonl")
    translated = read_jsonl(tmp_path / "result.jsonl")
    assert [r["row_index"] for r in translated] == list(range(12))
    assert "ES[The server times out here.]" in translated[5]["conversations"][1]["value"]


def test_a_sentence_that_always_times_out_is_quarantined_after_a_few_runs(tmp_path):
    source, out = _with_sentence(tmp_path, "The server times out here."), tmp_path / "out"
    backend = TimesOutOn("times out")
    reports = [
        run_translation(
            source, out, backend, chunk_size=4, retry=FAST_RETRY, max_transient_deferrals=2, progress=False
        )
        for _ in range(3)
    ]
    assert [r["complete"] for r in reports] == [False, False, True]
    quarantine = read_jsonl(out / "quarantine.jsonl")
    assert [q["row_index"] for q in quarantine] == [5] and "transitorio" in quarantine[0]["reason"]


def test_a_folder_of_the_previous_format_is_converted_and_its_transient_rows_retried(tmp_path):
    source, out = _with_sentence(tmp_path, "The server times out here."), tmp_path / "out"
    run_translation(source, out, FakeSpanish(), chunk_size=4, progress=False)
    # Rewrite the folder as format 1 wrote it: every chunk (with its QA) inside manifest.json,
    # and chunk 1 committed with row 5 quarantined after a transient failure.
    store = ChunkStore.open(out)
    chunks = {}
    for k, record in store.records.items():
        entry = record.to_json()
        entry["qa"] = store.qa(record)
        del entry["qa_file"], entry["qa_sha256"]
        (out / record.qa_file).unlink()
        chunks[str(k)] = entry
    rows1 = read_jsonl(out / chunks["1"]["file"])
    bad = next(r for r in rows1 if r["row_index"] == 5)
    kept = [r for r in rows1 if r["row_index"] != 5]
    quarantined = [
        {
            "id": bad["id"],
            "row_index": 5,
            "row": bad,
            # the English reason format 1 wrote (reasons are Spanish since format 2)
            "reason": "translation failed: TransientError (transient, attempts exhausted): 504",
        }
    ]
    from utils.translate.store import jsonl_bytes, sha256_bytes

    for key, rows in (("file", kept), ("quarantine_file", quarantined)):
        (out / chunks["1"][key]).write_bytes(jsonl_bytes(rows))
        chunks["1"][key.replace("file", "sha256")] = sha256_bytes(jsonl_bytes(rows))
    chunks["1"].update(translated=3, quarantined=1)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    (out / "manifest.json").write_text(
        json.dumps({"format": 1, "updated": "x", "run": manifest["run"], "chunks": chunks}), encoding="utf-8"
    )
    (out / COMMIT_LOG).unlink()

    assert sorted(ChunkStore.open(out).records) == [0, 2]  # readable as it is; chunk 1 is to be redone
    report = run_translation(source, out, FakeSpanish(), chunk_size=4, progress=False)
    assert report["chunks_resumed"] == 2 and report["chunks_this_run"] == 1 and report["rows_quarantined"] == 0
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["format"] == 2
    assert sorted(e["chunk"] for e in read_commit_log(out)) == [0, 1, 2]
    assert report["qa"]["turns_checked"] > 0


# --------------------------------------------------------------------------- commit cost


def _bytes_written() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_bytes_written_per_commit_do_not_grow_with_the_number_of_chunks(tmp_path):
    chunks = 300
    identity = RunIdentity("sha", "in.json", chunks, 1, Shard(), "fake")
    store = ChunkStore(tmp_path / "out", identity)
    row = {"id": "1", "conversations": [{"from": "gpt", "value": "Hola."}], "row_index": 0}
    qa = {
        "turns_checked": 1,
        "turns_flagged": 1,
        "flag_counts_turns": {"not_spanish": 1},
        "flag_counts_rows": {"not_spanish": 1},
        "flagged_rows": [{"row_index": 0, "id": "1", "flags": {}}],
    }
    stats = {"segments": 1, "seconds": 0.1}
    cost = []
    for chunk in range(chunks):
        before = _bytes_written()
        store.commit(chunk, [row], [], stats, qa)
        cost.append(_bytes_written() - before)
    store.close()
    early, late = sum(cost[10:30]) / 20, sum(cost[-20:]) / 20
    assert late <= early * 1.05 + 64, f"bytes per commit grew from {early:.0f} to {late:.0f}"
    assert sorted(ChunkStore.open(tmp_path / "out").records) == list(range(chunks))


def test_a_commit_line_cut_short_is_ignored_and_cut_off(tmp_path):
    identity = RunIdentity("sha", "in.json", 3, 1, Shard(), "fake")
    store = ChunkStore(tmp_path / "out", identity)
    for chunk in range(2):
        store.commit(chunk, [{"row_index": chunk}], [], {}, {})
    store.close()
    log_path = tmp_path / "out" / COMMIT_LOG
    complete = log_path.read_bytes()
    with log_path.open("ab") as handle:  # a crash (or a full disk) in the middle of the third line
        handle.write(complete.splitlines(keepends=True)[0][:25])
    assert sorted(ChunkStore.open(tmp_path / "out").records) == [0, 1]
    store = ChunkStore(tmp_path / "out", identity)
    assert log_path.read_bytes() == complete, "the writer cuts the incomplete line off"
    store.commit(2, [{"row_index": 2}], [], {}, {})
    store.close()
    assert [e["chunk"] for e in read_commit_log(tmp_path / "out")] == [0, 1, 2]


def test_a_failed_append_leaves_no_partial_line(tmp_path, monkeypatch):
    import utils.translate.store as store_module

    log = AppendLog(tmp_path / "log.jsonl")
    log.append({"n": 1})

    class FullDisk:  # os, except that write stores half the bytes: what a full disk does
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def write(fd, data):
            return os.write(fd, data[: len(data) // 2])

    monkeypatch.setattr(store_module, "os", FullDisk())
    with pytest.raises(OSError, match="No space left"):
        log.append({"n": 2, "padding": "x" * 100})
    monkeypatch.undo()
    log.close()
    assert (tmp_path / "log.jsonl").read_bytes() == b'{"n":1}\n'


# --------------------------------------------------------------------------- notebook 01's folder

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from utils.translate.workdir import private_workdir
    work = private_workdir(sys.argv[1])
    (work / "live.sqlite").write_text("in use")
    print(work, flush=True)
    sys.stdin.readline()   # hold the folder until the test says so
""")


def test_two_notebook_runs_never_delete_each_others_work_folder(tmp_path):
    from utils.translate.workdir import private_workdir

    base = tmp_path / "nb01"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(base)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        theirs = Path(holder.stdout.readline().strip())
        ours = private_workdir(base, verbose=False)
        assert ours != theirs and ours.parent == theirs.parent == base.resolve()
        assert (theirs / "live.sqlite").read_text() == "in use", "a live run's files are never deleted"
        (ours / "chunks").mkdir()
        assert private_workdir(base, verbose=False) == ours and not (ours / "chunks").exists()  # re-run: fresh
    finally:
        holder.communicate("done\n", timeout=60)
    assert holder.returncode == 0
    private_workdir(base, verbose=False)  # the other run has ended: its folder is cleaned up
    assert not theirs.exists() and ours.exists()


def test_notebook_01_uses_a_private_work_folder_and_reads_jsonl_by_newlines():
    notebook = json.loads((ROOT / "notebooks" / "01_traducir_llava_instruct.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in notebook["cells"][1:] if c["cell_type"] == "code")
    assert "private_workdir(" in code and "rmtree" not in code
    assert not re.search(r"read_text\([^)]*\)\.splitlines\(\)", code), "U+2028 inside a value would split a row"


# --------------------------------------------------------------------------- input files


def _jsonl(rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def test_line_separators_inside_values_and_a_bom_do_not_break_rows(tmp_path):
    rows = load_rows(MINI)[:6]
    rows[0]["conversations"][1]["value"] = "First part.\u2028Second part.\u0085Third part."
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + _jsonl(rows).encode("utf-8"))  # as Excel writes it
    assert load_rows(source) == rows
    as_json = tmp_path / "in.json"
    as_json.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows, ensure_ascii=False).encode("utf-8"))
    assert load_rows(as_json) == rows
    run_translation(source, tmp_path / "out", FakeSpanish(), chunk_size=4, progress=False)
    merge_outputs([tmp_path / "out"], tmp_path / "result.jsonl")
    result = read_jsonl(tmp_path / "result.jsonl")
    assert [r["conversations_en"] for r in result] == [r["conversations"] for r in rows]


def test_utf16_and_latin1_inputs_get_a_clear_message(tmp_path):
    rows = load_rows(MINI)[:3]
    rows[0]["conversations"][1]["value"] = "Un café en el árbol."
    (tmp_path / "u16.jsonl").write_bytes(_jsonl(rows).encode("utf-16"))
    (tmp_path / "u16.json").write_bytes(json.dumps(rows, ensure_ascii=False).encode("utf-16"))
    (tmp_path / "l1.json").write_bytes(json.dumps(rows, ensure_ascii=False).encode("latin-1"))
    for name in ("u16.jsonl", "u16.json"):
        with pytest.raises(TranslateError, match="UTF-16.*UTF-8"):
            load_rows(tmp_path / name)
    with pytest.raises(TranslateError, match="latin-1.*UTF-8"):
        load_rows(tmp_path / "l1.json")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no tiene ninguna fila"),
        (b"\n\n", "no tiene ninguna fila"),
        (b'hello\nworld\n{"id": 1}\n', "Ninguna de las 3 filas"),
        ("caf\u00e9\n".encode("latin-1") * 3, "Ninguna de las 3 filas"),
    ],
)
def test_an_empty_or_garbage_input_is_refused_not_complete(tmp_path, content, message):
    source = tmp_path / "in.jsonl"
    source.write_bytes(content)
    with pytest.raises(TranslateError, match=message):
        run_translation(source, tmp_path / "out", FakeSpanish(), progress=False)
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_negative_limit_is_refused():
    with pytest.raises(TranslateError, match="limit=-1"):
        load_rows(MINI, limit=-1)


def test_an_interrupt_during_a_commit_waits_for_the_commit_to_finish(tmp_path):
    from utils.translate.store import critical_section, interrupt

    identity = RunIdentity("sha", "in.json", 2, 1, Shard(), "fake")
    store = ChunkStore(tmp_path / "out", identity)
    real_append = store._log.append

    def append_then_signal(entry):  # SIGINT arrives while the commit line is being written
        real_append(entry)
        interrupt(KeyboardInterrupt())

    store._log.append = append_then_signal
    with pytest.raises(KeyboardInterrupt):
        store.commit(0, [{"row_index": 0}], [], {}, {})
    assert sorted(store.records) == [e["chunk"] for e in read_commit_log(tmp_path / "out")] == [0]
    store.close()
    with pytest.raises(KeyboardInterrupt):  # outside a commit it is raised at once
        interrupt(KeyboardInterrupt())
    with pytest.raises(ValueError), critical_section():  # the block's own error wins; nothing stays pending
        interrupt(KeyboardInterrupt())
        raise ValueError("disk error")
    with critical_section():
        pass
