"""The runner: the notebook environment, the CPU-only overrides, a missing builder."""

from __future__ import annotations

import json

from rehearsal import __main__ as runner
from rehearsal import standins
from rehearsal.hub import OFFLINE_VARS
from utils.core.settings import apply_overrides, env_overrides, get_settings

#: Settings fields that are about numeric precision (the only kind a CPU forces us to change).
PRECISION_FIELDS = {"precision", "fp16", "bf16", "dtype"}


def test_cpu_overrides_only_change_precision_and_apply_to_full(monkeypatch):
    full = get_settings("full")
    for key, value in runner.CPU_OVERRIDES.items():
        section, field = key.split(".")
        assert field in PRECISION_FIELDS, key
        assert getattr(getattr(full, section), field) != value, f"{key} is already {value!r} in full"
    monkeypatch.setenv("COURSE_SETTINGS_OVERRIDES", json.dumps(runner.CPU_OVERRIDES))
    changed = apply_overrides(full, env_overrides())
    assert changed.good_bad.precision == "fp32" and changed.llava.fp16 is False
    assert changed.llava.load_in_4bit and changed.good_bad.load_in_4bit  # 4-bit stays


def test_notebook_env(monkeypatch, tmp_path):
    monkeypatch.setattr(runner, "rehearsal_dir", lambda: tmp_path)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_TOKEN"):
        monkeypatch.setenv(name, "1")
    (tmp_path / "hf_home" / "05").mkdir(parents=True)
    (tmp_path / "hf_home" / "05" / "stale").write_text("x", encoding="utf-8")
    env = runner.notebook_env("05", "http://127.0.0.1:1234")
    assert env["COURSE_PROFILE"] == "full" and env["COURSE_REHEARSAL"] == "1"
    assert env["HF_ENDPOINT"] == "http://127.0.0.1:1234"
    assert not set(OFFLINE_VARS) & set(env)
    assert env["HF_HOME"] == str(tmp_path / "hf_home" / "05")
    assert not any((tmp_path / "hf_home" / "05").iterdir())  # fresh
    assert json.loads(env["COURSE_SETTINGS_OVERRIDES"]) == runner.CPU_OVERRIDES
    assert env["PYTHONPATH"].split(":")[0] == str(runner.repo_root() / "src")


def test_run_with_a_missing_builder_fails_clearly(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(standins.BUILDERS, "02", "rehearsal.standins.nb_not_written_yet")
    monkeypatch.setattr(runner, "rehearsal_dir", lambda: tmp_path)
    ran = []
    monkeypatch.setattr(runner, "run_notebook", lambda *a, **k: ran.append(a) or (0, 0.0))
    assert runner.main(["run", "02"]) == 1
    out = capsys.readouterr().out
    assert "No stand-ins for notebook 02 yet" in out and "02: FAILED: no stand-ins yet" in out
    assert ran == []
