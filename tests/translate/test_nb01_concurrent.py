"""Two notebook-01 runs at once no longer destroy each other's work (issue 15.4), at run time.

Before, each run of notebook 01 emptied ``build/nb01/`` with ``shutil.rmtree``: a second kernel
deleted the first one's live SQLite cache and chunks.  Here two processes do what the notebook's
section 5 does, at the same time, under one ``build/nb01``: take a work folder with
:func:`utils.translate.workdir.private_workdir`, translate into it with the mini MT model, and merge.
Both must finish with every row exactly once, and with the same rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "data" / "llava_instruct_mini.json"
ROWS = 20

_RUN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    from utils.core.assets import resolve_model
    from utils.translate import Seq2SeqBackend, merge_outputs, run_translation
    from utils.translate.workdir import private_workdir

    source, base, sync, name, rows = sys.argv[1:6]
    backend = Seq2SeqBackend(resolve_model("local:opus-mt-en-es-random"), max_new_tokens=4, threads=1)
    work = private_workdir(base)                  # as the notebook's section 5 does
    (work / "live.txt").write_text(name)
    (Path(sync) / name).write_text(str(work))
    deadline = time.monotonic() + 300
    while len(list(Path(sync).iterdir())) < 2:    # both have their folder: now translate together
        assert time.monotonic() < deadline, "the other run never started"
        time.sleep(0.05)
    report = run_translation(source, work / "parte-0", backend, chunk_size=5, limit=int(rows), progress=False)
    merged = merge_outputs([work / "parte-0"], work / "llava_es.jsonl")
    assert (work / "live.txt").read_text() == name, "another run touched this folder"
    print(json.dumps({"work": str(work), "complete": report["complete"], "merged": merged}))
""")


@pytest.mark.slow
def test_two_notebook_runs_at_once_both_finish_with_complete_output(tmp_path):
    base, sync = tmp_path / "build" / "nb01", tmp_path / "sync"
    sync.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COURSE_PROFILE": "mini"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUN, str(MINI), str(base), str(sync), name, str(ROWS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    works = [Path(o["work"]) for o in outputs]
    assert works[0] != works[1] and all(w.parent == base.resolve() for w in works)
    translated = []
    for out, work in zip(outputs, works):
        assert out["complete"] is True
        rows = [json.loads(line) for line in (work / "llava_es.jsonl").read_text(encoding="utf-8").splitlines()]
        assert sorted(r["row_index"] for r in rows) == list(range(ROWS)), "a row lost or duplicated"
        assert all(r["conversations"] and r["conversations_en"] for r in rows)
        translated.append(rows)
    assert translated[0] == translated[1], "the same input and model gave different rows"
