"""The runner: the notebook environment, the CPU-only overrides, a missing builder."""

from __future__ import annotations

import json

from rehearsal import __main__ as runner
from rehearsal import standins
from rehearsal.hub import OFFLINE_VARS
from utils.core.settings import apply_overrides, env_overrides, get_settings

#: Settings fields that are about numeric precision (the only kind a CPU forces us to change).
PRECISION_FIELDS = {"precision", "fp16", "bf16", "dtype"}

#: The only settings that are an amount of data (not a code path) the rehearsal may shrink.
#: Not here on purpose: translate.num_beams (beam search is another generate() branch than
#: greedy), prompting.json_max_tokens (a cut would truncate JSON and run the repair path).
VOLUME_KEYS = {
    "translate.rows",
    "translate.chunk_size",
    "prompting.json_reviews",
    "prompting.max_tokens",
    "prompting.chat_max_tokens",
    "llava.max_steps",
    "llava.train_size",
}


def test_cpu_overrides_only_change_precision_and_apply_to_full(monkeypatch):
    full = get_settings("full")
    for key, value in runner.CPU_OVERRIDES.items():
        section, field = key.split(".")
        assert field in PRECISION_FIELDS, key
        assert getattr(getattr(full, section), field) != value, f"{key} is already {value!r} in full"
    monkeypatch.setenv("COURSE_SETTINGS_OVERRIDES", json.dumps(runner.CPU_OVERRIDES))
    changed = apply_overrides(full, env_overrides())
    assert changed.good_bad.precision == "fp32" and changed.llava.precision == "fp32"
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
    overrides = json.loads(env["COURSE_SETTINGS_OVERRIDES"])
    assert overrides == {**runner.CPU_OVERRIDES, **{k: v for k, (v, _) in runner.VOLUME_OVERRIDES.items()}}
    assert env["PYTHONPATH"].split(":")[0] == str(runner.repo_root() / "src")


def test_run_with_a_missing_builder_fails_clearly(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(standins.BUILDERS, "02", "rehearsal.standins.nb_not_written_yet")
    monkeypatch.setattr(runner, "rehearsal_dir", lambda: tmp_path)
    # build under tmp_path: the clone's build/ may already hold notebook 02's real stand-ins (an
    # earlier `make test`, or the rehearsal running beside this suite), and those would be reused
    monkeypatch.setattr(runner, "build", lambda number, _root: standins.build(number, tmp_path))
    ran = []
    monkeypatch.setattr(runner, "run_notebook", lambda *a, **k: ran.append(a) or (0, 0.0))
    assert runner.main(["run", "02"]) == 1
    out = capsys.readouterr().out
    assert "No stand-ins for notebook 02 yet" in out and "02: FAILED: no stand-ins yet" in out
    assert ran == []


def test_volume_overrides_only_shrink_documented_volumes(monkeypatch):
    monkeypatch.delenv("COURSE_SETTINGS_OVERRIDES", raising=False)
    full = get_settings("full")
    assert set(runner.VOLUME_OVERRIDES) <= VOLUME_KEYS, set(runner.VOLUME_OVERRIDES) - VOLUME_KEYS
    assert not set(runner.VOLUME_OVERRIDES) & set(runner.CPU_OVERRIDES)
    for key, (value, reason) in runner.VOLUME_OVERRIDES.items():
        section, field = key.split(".")
        full_value = getattr(getattr(full, section), field)
        assert isinstance(value, int) and 0 < value, key
        # a cut, never growth; 0 means "all" for rows/json_reviews, so any positive value is a cut
        assert full_value == 0 or value < full_value, f"{key}: {value!r} is not less than full's {full_value!r}"
        assert len(reason) > 20, f"{key} needs its reason"
    changed = apply_overrides(full, _by_section(runner.rehearsal_overrides()))
    assert changed.translate.num_beams == full.translate.num_beams > 1  # beam search still runs
    assert changed.prompting.json_max_tokens == full.prompting.json_max_tokens
    # notebook 04 still saves a checkpoint (the resume path), warms up and decays as in full
    assert changed.llava.save_steps == full.llava.save_steps < changed.llava.max_steps
    assert full.llava.warmup_steps < changed.llava.max_steps
    # and trains on as many questions as its steps see: no question is seen twice, none is left unused
    llava = changed.llava
    assert llava.train_size == llava.max_steps * llava.batch_size * llava.grad_accum
    assert set(runner.rehearsal_overrides()) == set(runner.CPU_OVERRIDES) | set(runner.VOLUME_OVERRIDES)


def test_notebook_01_keeps_the_full_chunk_structure(monkeypatch):
    """Fewer rows, but the same number of chunks (and so the same shards, kill and resume)."""
    monkeypatch.delenv("COURSE_SETTINGS_OVERRIDES", raising=False)
    full = get_settings("full").translate
    cut = apply_overrides(get_settings("full"), _by_section(runner.rehearsal_overrides())).translate
    assert cut.rows < full.rows
    assert -(-cut.rows // cut.chunk_size) == -(-full.rows // full.chunk_size) >= 4
    assert cut.rows % cut.chunk_size == full.rows % full.chunk_size


def test_the_runner_reports_every_override(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("COURSE_SETTINGS_OVERRIDES", raising=False)
    monkeypatch.setattr(runner, "rehearsal_dir", lambda: tmp_path)
    monkeypatch.setattr(runner, "build_trees", lambda numbers, strict=True: ({}, {}))
    assert runner.main(["run", "05"]) == 1  # no tree: reported as failed, nothing runs
    out = capsys.readouterr().out
    for key, (value, reason) in runner.VOLUME_OVERRIDES.items():
        assert f"{key}: " in out and f"-> {value!r} (volume; {reason})" in out
    for key in runner.CPU_OVERRIDES:
        assert f"{key}: " in out
    assert "translate.rows: 2000 -> 96" in out


def _by_section(flat: dict[str, object]) -> dict[str, dict[str, object]]:
    by_section: dict[str, dict[str, object]] = {}
    for key, value in flat.items():
        section, field = key.split(".")
        by_section.setdefault(section, {})[field] = value
    return by_section
