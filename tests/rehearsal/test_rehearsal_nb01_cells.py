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
