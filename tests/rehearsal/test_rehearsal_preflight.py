"""With COURSE_REHEARSAL=1 the GPU check of the full profile passes on CPU, with a note."""

from __future__ import annotations

import pytest

from utils.core.preflight import PreflightError, check_gpu, preflight

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the rehearsal note is for CPU-only machines")


def test_gpu_check_passes_in_rehearsal_with_a_note(monkeypatch):
    monkeypatch.setenv("COURSE_REHEARSAL", "1")
    check = check_gpu(14)
    assert check.ok and check.warning
    assert "ensayo del perfil full en CPU" in check.detail
    assert [c.name for c in preflight(gpu_gb=14, quiet=True)] == ["GPU"]


def test_gpu_check_still_fails_outside_the_rehearsal(monkeypatch):
    for value in ("", "0"):
        monkeypatch.setenv("COURSE_REHEARSAL", value)
        assert not check_gpu(14).ok
        with pytest.raises(PreflightError):
            preflight(gpu_gb=14, quiet=True)
