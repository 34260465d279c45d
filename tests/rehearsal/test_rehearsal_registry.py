"""The builder registry: lazy modules, a clear failure for a missing one, cached builds."""

from __future__ import annotations

import sys
import types

import pytest

from rehearsal import standins
from rehearsal.hub import HubTree


def test_normalize_numbers():
    assert standins.normalize(1) == "01"
    assert standins.normalize("05") == "05"
    assert standins.normalize("03_datos_buenos_vs_malos") == "03"
    with pytest.raises(ValueError):
        standins.normalize("7")
    with pytest.raises(ValueError):
        standins.normalize("abc")


def test_missing_builder_module_fails_clearly(monkeypatch):
    monkeypatch.setitem(standins.BUILDERS, "02", "rehearsal.standins.nb_not_written_yet")
    with pytest.raises(standins.MissingBuilderError, match="No stand-ins for notebook 02 yet"):
        standins.load_builder("02")


def test_builder_import_error_inside_module_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "nb_broken_builder.py").write_text("import surely_missing_module_xyz\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(standins.BUILDERS, "02", "nb_broken_builder")
    with pytest.raises(ModuleNotFoundError, match="surely_missing_module_xyz"):
        standins.load_builder("02")


def test_build_is_cached_and_atomic(tmp_path, monkeypatch):
    calls = []

    def build(hub: HubTree) -> None:
        calls.append(hub.root)
        (hub.model("org/m") / "config.json").write_text("{}", encoding="utf-8")

    fake = types.ModuleType("rehearsal.standins.nb_fake")
    fake.build = build
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setitem(standins.BUILDERS, "04", fake.__name__)
    tree = standins.build("04", tmp_path)
    again = standins.build("4", tmp_path)
    assert len(calls) == 1 and tree.root == again.root
    assert [(t, r) for t, r, _ in tree.repos()] == [("model", "org/m")]
    assert tree.root.parent == standins.cache_root(tmp_path)
    assert not [p for p in tree.root.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def build(hub: HubTree) -> None:
        hub.model("org/m")
        raise RuntimeError("boom")

    fake = types.ModuleType("rehearsal.standins.nb_fail")
    fake.build = build
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    monkeypatch.setitem(standins.BUILDERS, "04", fake.__name__)
    with pytest.raises(RuntimeError):
        standins.build("04", tmp_path)
    assert list(standins.cache_root(tmp_path).iterdir()) == []
