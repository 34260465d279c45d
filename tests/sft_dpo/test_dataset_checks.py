"""SFT and DPO validators on good and bad datasets (lists, datasets.Dataset, pandas)."""

from __future__ import annotations

import pandas as pd
import pytest
from datasets import Dataset

from utils.sft_dpo.dataset_checks import as_dataset, check_dpo_rows, check_sft_rows, report_dataset, spanish_split

USER = {"role": "user", "content": "¿Dónde está la Alhambra?"}
ANSWER = {"role": "assistant", "content": "La Alhambra está en Granada, en el sur de España."}
OTHER = {"role": "assistant", "content": "Creo que está en Sevilla, junto al río Guadalquivir."}
GOOD_SFT = [
    {"messages": [USER, ANSWER]},
    {"messages": [{"role": "system", "content": "Eres útil."}, USER, ANSWER, USER, OTHER]},
]
GOOD_DPO = [{"prompt": [USER], "chosen": [ANSWER], "rejected": [OTHER]}]


@pytest.mark.parametrize("wrap", [list, Dataset.from_list, pd.DataFrame])
def test_good_datasets_pass(wrap):
    assert check_sft_rows(wrap(GOOD_SFT)) == []
    assert check_dpo_rows(wrap(GOOD_DPO)) == []


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], "the dataset is empty"),
        ([{"conversation": [USER, ANSWER]}], "missing column(s) ['messages']"),
        ([{"messages": [USER]}], "must end with a 'assistant' turn"),
        ([{"messages": [USER, USER, ANSWER]}], "do not alternate"),
        ([{"messages": [ANSWER, USER, ANSWER]}], "must start with a 'user' turn"),
        ([{"messages": [USER, {"role": "assistant", "content": "  "}]}], "has empty content"),
        (
            [{"messages": [USER, {"role": "assistant", "content": "The Alhambra is a palace in Granada, Spain."}]}],
            "is not Spanish (detected 'en')",
        ),
        ([{"messages": "¿Dónde está la Alhambra?"}], "non-empty list"),
        ([{"messages": [{"text": "hola"}]}], "must be a dict with 'role' and 'content'"),
    ],
)
def test_bad_sft_rows_are_reported(rows, expected):
    problems = check_sft_rows(rows)
    assert problems and any(expected in str(p) for p in problems), [str(p) for p in problems]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"prompt": [USER], "chosen": [ANSWER], "rejected": [dict(ANSWER)]}, "chosen and rejected are the same"),
        ({"prompt": [USER, ANSWER], "chosen": [ANSWER], "rejected": [OTHER]}, "prompt must end with a 'user' turn"),
        ({"prompt": [USER], "chosen": [ANSWER, OTHER], "rejected": [OTHER]}, "exactly one assistant turn"),
        ({"prompt": [USER], "chosen": [USER], "rejected": [OTHER]}, "chosen must end with a 'assistant' turn"),
        ({"prompt": [USER], "chosen": [], "rejected": [OTHER]}, "chosen must be a non-empty list"),
        (
            {
                "prompt": [USER],
                "chosen": [ANSWER],
                "rejected": [{"role": "assistant", "content": "It is in Seville, next to the river."}],
            },
            "not Spanish",
        ),
    ],
)
def test_bad_dpo_rows_are_reported(row, expected):
    problems = check_dpo_rows([row])
    assert problems and all(p.row == 0 for p in problems)
    assert any(expected in str(p) for p in problems), [str(p) for p in problems]


def test_missing_dpo_column():
    assert "missing column(s) ['rejected']" in str(check_dpo_rows([{"prompt": [USER], "chosen": [ANSWER]}])[0])


def test_report_prints_verdict(capsys):
    assert report_dataset("sft", GOOD_SFT) is True
    assert report_dataset("dpo", [{"prompt": [USER], "chosen": [ANSWER], "rejected": [ANSWER]}]) is False
    out = capsys.readouterr().out
    assert "✅ 2 filas SFT" in out and "row 0: chosen and rejected are the same answer" in out


def test_as_dataset_keeps_columns_when_empty():
    assert as_dataset([], ["prompt", "chosen", "rejected"]).column_names == ["prompt", "chosen", "rejected"]
    assert len(as_dataset(GOOD_DPO, ["prompt"])) == 1


def test_spanish_split_flags_english_leakage():
    rows = [
        {"instruction": "¿Qué es la fotosíntesis?", "response": "Es el proceso con el que las plantas usan la luz."},
        {
            "instruction": "¿Qué es la fotosíntesis?",
            "response": "It is how plants turn sunlight into chemical energy.",
        },
        {"instruction": "¿Qué es?", "generations": ["Sí.", "Es un proceso de las plantas verdes con luz."]},
    ]
    keep, leak = spanish_split(rows[:2], ["instruction", "response"])
    assert keep == rows[:1] and leak == rows[1:2]
    assert spanish_split(rows[2:], ["instruction", "generations"]) == (rows[2:], [])  # short texts pass
