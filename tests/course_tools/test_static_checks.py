"""The full profile cannot run here: check its calls against the installed, pinned libraries."""

from __future__ import annotations

import json

import pytest

from course_tools.static_checks import call_keywords, imported_names, notebook_keyword_problems, unknown_keywords
from utils.core.course import NOTEBOOKS
from utils.core.paths import repo_root

#: Libraries whose call signatures the notebooks rely on (plus the course's own helpers).
LIBRARIES = (
    "transformers",
    "peft",
    "trl",
    "datasets",
    "distilabel",
    "argilla",
    "openai",
    "huggingface_hub",
    "sacrebleu",
    "torch",
    "pydantic",
    "utils",
)


def test_call_keywords_and_unknown_keywords():
    source = "%pip install x\n!ls\nfrom a import f\nx = f(1, good=2, **extra)\ny = obj.method(bad=3)\n"
    assert call_keywords(source) == [("f", ["good"], 4), ("obj.method", ["bad"], 5)]

    def f(a, good=0):
        return a

    def anything(**kwargs):
        return kwargs

    problems = unknown_keywords(source, {"f": f, "obj.method": f}, where="cell")
    assert [(p.call, p.keyword) for p in problems] == [("obj.method", "bad")]
    assert "cell:5" in str(problems[0])
    assert unknown_keywords(source, {"obj.method": anything}, where="cell") == []


def test_imports_are_resolved():
    names = imported_names("from peft import LoraConfig as LC\nimport json\nimport torch.nn\n", ["peft", "torch"])
    from peft import LoraConfig

    assert names["LC"] is LoraConfig and "json" not in names and names["torch"].__name__ == "torch"


def test_a_renamed_argument_is_caught(tmp_path):
    cell = "from trl import SFTConfig\nargs = SFTConfig(output_dir='x', max_seq_length=128)\n"
    nb = {"cells": [{"cell_type": "code", "source": cell, "metadata": {}, "outputs": []}], "metadata": {}}
    path = tmp_path / "old.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    problems, checked = notebook_keyword_problems(path, ["trl"])
    assert checked == 1 and [p.keyword for p in problems] == ["max_seq_length"]


def test_a_wrong_keyword_of_the_openai_client_is_caught(tmp_path):
    cell = (
        "from openai import OpenAI\nclient = OpenAI(base_url='http://x/v1', api_key='k')\n"
        "client.chat.completions.create(model='m', messages=[], response_fromat={'type': 'json_object'})\n"
    )
    nb = {"cells": [{"cell_type": "code", "source": cell, "metadata": {}, "outputs": []}], "metadata": {}}
    path = tmp_path / "client.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    problems, checked = notebook_keyword_problems(path, ["openai"])
    assert checked == 2 and [p.keyword for p in problems] == ["response_fromat"]


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_every_keyword_each_notebook_passes_is_accepted(info):
    """Includes the cells that only run in the full profile (``if not nb.is_mini: ...``)."""
    problems, checked = notebook_keyword_problems(repo_root() / info.repo_path, LIBRARIES)
    assert not problems, "\n".join(map(str, problems))
    assert checked >= 3, f"only {checked} calls could be checked in {info.filename}"
