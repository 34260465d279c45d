"""With COURSE_REHEARSAL=1 the full profile's GPU and disk needs pass on CPU stand-ins, with a note."""

from __future__ import annotations

import pytest

from utils.core.preflight import REHEARSAL_DISK_GB, PreflightError, check_disk, check_gpu, preflight

torch = pytest.importorskip("torch")
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="the rehearsal note is for CPU-only machines")


@cpu_only
def test_gpu_check_passes_in_rehearsal_with_a_note(monkeypatch):
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    check = check_gpu(14)
    assert check.ok and check.warning
    assert "ensayo del perfil full en CPU" in check.detail
    assert [c.name for c in preflight(gpu_gb=14, quiet=True)] == ["GPU"]


@cpu_only
def test_gpu_check_still_fails_outside_the_rehearsal(monkeypatch):
    for value in ("", "0"):
        monkeypatch.setenv("COURSE_REHEARSAL", value)
        assert not check_gpu(14).ok
        with pytest.raises(PreflightError):
            preflight(gpu_gb=14, quiet=True)


def _free_gib(monkeypatch, gib: float) -> None:
    usage = type("Usage", (), {"free": int(gib * 2**30)})
    monkeypatch.setattr("utils.core.preflight.shutil.disk_usage", lambda path: usage)


def test_disk_check_of_the_full_profile_is_a_note_in_the_rehearsal(monkeypatch, tmp_path):
    # CI of stop 17: a runner with 29.7 GiB free failed all five rehearsals on the 30 GiB need.
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    _free_gib(monkeypatch, 29.7)
    check = check_disk(30, tmp_path)
    assert check.ok and check.warning
    assert "30 GiB" in check.detail and "ensayo" in check.detail


def test_disk_check_fails_in_the_rehearsal_below_what_the_stand_ins_need(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    _free_gib(monkeypatch, REHEARSAL_DISK_GB / 2)
    check = check_disk(30, tmp_path)
    assert not check.ok and "libera espacio" in check.fix


def test_disk_check_still_fails_outside_the_rehearsal(monkeypatch, tmp_path):
    _free_gib(monkeypatch, 29.7)
    for value in ("", "0"):
        monkeypatch.setenv("COURSE_REHEARSAL", value)
        check = check_disk(30, tmp_path)
        assert not check.ok and not check.warning
        assert "29.7 GiB libres" in check.detail
