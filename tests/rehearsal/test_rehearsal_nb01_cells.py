"""Notebook 01's cells on data shaped like the full profile's (found by the rehearsal)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from rehearsal.standins.nb01 import generate_rows

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_traducir_llava_instruct.ipynb"


def _cell(marker: str) -> str:
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    found = [("".join(c["source"])) for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(found) == 1, marker
    return found[0]


def test_segment_example_cell_works_without_code_blocks():
    """LLaVA-Instruct-150K's rows (like the real sample in shared/real-data) have no ``` block:
    the cell used next(...) over values with ``` and stopped with StopIteration in full."""
    rows = generate_rows(300)
    assert not any("```" in t["value"] for r in rows for t in r["conversations"])
    namespace = {"rows": rows, "pd": pd}
    exec(_cell("template = segment_text(example)"), namespace)  # noqa: S102 - the notebook's own cell
    example, template = namespace["example"], namespace["template"]
    assert "\n" in example and template.segments
    assert template.render([s.text for s in template.segments]) == example


def test_segment_example_cell_prefers_a_code_block():
    rows = generate_rows(50)
    code = "Use this:\n\n```python\nprint('hola')\n```\n\nThen run it."
    rows[7]["conversations"][1]["value"] = code
    namespace = {"rows": rows, "pd": pd}
    exec(_cell("template = segment_text(example)"), namespace)  # noqa: S102
    assert namespace["example"] == code


class _Results:
    def __init__(self):
        self.values = {}

    def record(self, **values):
        self.values.update(values)


class _Notebook:
    profile = "full"

    def __init__(self):
        self.results = _Results()


def _report(rows_quarantined: int) -> dict:
    return {
        "rows_in": 10,
        "rows_translated": 10 - rows_quarantined,
        "rows_quarantined": rows_quarantined,
        "segments": 40,
        "segments_sent": 30,
        "fallbacks": 1,
        "retries": 0,
        "translate_s": 2.0,
        "requests": 40,
    }


def _run_report_cell(tmp_path, quarantine_text: str):
    (tmp_path / "llava_es.quarantine.jsonl").write_text(quarantine_text, encoding="utf-8")
    shown = []
    namespace = {
        "pd": pd,
        "work": tmp_path,
        "nb": _Notebook(),
        "display": shown.append,
        "report0": _report(0),
        "report1": _report(len(quarantine_text.splitlines())),
    }
    code = _cell('quarantine[["id", "row_index", "reason"]]')
    *body, last = code.rstrip().split("\n")
    exec("\n".join(body), namespace)  # noqa: S102 - the notebook's own cell
    return eval(last, namespace), namespace


def test_report_cell_with_an_empty_quarantine(tmp_path):
    """Real rows are well formed: the quarantine file is empty and pandas gave a frame without
    columns, so selecting id/row_index/reason raised KeyError in full."""
    frame, namespace = _run_report_cell(tmp_path, "")
    assert list(frame.columns) == ["id", "row_index", "reason"] and frame.empty
    assert namespace["seq2seq_totals"]["rows_quarantined"] == 0


def test_report_cell_lists_quarantined_rows(tmp_path):
    line = json.dumps({"id": "000000033471", "row_index": 3, "reason": "no conversations", "row": {}})
    frame, _ = _run_report_cell(tmp_path, line + "\n")  # LLaVA ids stay strings (leading zeros)
    assert frame.to_dict("records") == [{"id": "000000033471", "row_index": 3, "reason": "no conversations"}]
