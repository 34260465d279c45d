"""The Colab-like environment check (issue 11): each notebook's install cell against Colab's
published runtime on Python 3.13, the pins on Python 3.13, and the mini fallback in Colab.

The resolver tests ask PyPI for metadata (no other network); they need a Python 3.13
interpreter (pyenv's, or COURSE_COLAB_PYTHON) and fail in CI when there is none.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course_tools import colab_env
from course_tools.catalogue import setup_cell_source
from course_tools.colab_env import COLAB_FREEZE, Change, Resolution, problems, read_freeze
from utils.core.colab_runtime import (
    RESTART_STEPS,
    RestartRequired,
    changed_since,
    imported_versions,
    require_fresh_imports,
)
from utils.core.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]
SHARED_COLAB = ROOT.parent / "shared" / "colab"


@pytest.fixture(scope="module")
def python313() -> str:
    python = colab_env.find_python()
    if python is None:
        message = "no Python 3.13 here (pyenv install 3.13, or COURSE_COLAB_PYTHON=...)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture(scope="module")
def colab_run(python313):
    """Everything that asks PyPI, concurrently: the five notebooks and requirements.txt."""
    freeze = read_freeze()
    venv_python = str(colab_env.fake_colab_venv(python313, freeze))
    requirements = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith(("#", "-e"))
    ]
    with ThreadPoolExecutor(max_workers=6) as pool:  # pip mostly waits on PyPI
        # the light 3.13 venv starts with the versions known before resolving (see its test)
        light = pool.submit(colab_env.light_venv, python313, colab_env.expected_light_versions(freeze))
        pins = pool.submit(
            colab_env.resolve,
            venv_python,
            requirements,
            freeze,
            # a fresh 3.13 environment: wheels only, except the known llama.cpp source build
            extra_args=["--ignore-installed", "--only-binary=:all:", "--no-binary=llama-cpp-python"],
        )
        notebooks = list(pool.map(lambda info: colab_env.check_notebook(venv_python, info, freeze), NOTEBOOKS))
    return {
        "freeze": freeze,
        "notebooks": {r.info.name: r for r in notebooks},
        "pins": pins.result(),
        "light": light.result(),
    }


# --------------------------------------------------------------------------- Colab's list


def test_colab_list_is_googles_python_313_runtime():
    freeze = read_freeze()
    assert freeze["torch"] == "2.11.0+cu128" and freeze["pillow"] == "11.3.0" and freeze["numpy"] == "2.1.3"
    assert "Python 3.13" in (COLAB_FREEZE.parent / "os-info-gpu.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(not SHARED_COLAB.is_dir(), reason="no ../shared/colab beside this checkout")
def test_colab_list_matches_the_shared_copy():
    for name in ("pip-freeze.gpu.txt", "os-info-gpu.txt"):
        assert (COLAB_FREEZE.parent / name).read_bytes() == (SHARED_COLAB / name).read_bytes(), name


# --------------------------------------------------------------------------- the rules, offline


def _change(name, old, new, file="x-1-py3-none-any.whl"):
    return Change(name, old, new, f"https://files.example/{file}")


INFO = NOTEBOOKS[3]
CARD = "### Ficha de recursos\n| perfil | ... |"


def test_rules_accept_plain_upgrades_and_new_wheels():
    res = Resolution(
        ["transformers==5.23.0"], [_change("transformers", "5.15.0", "5.23.0"), _change("trl", None, "1.16.0")]
    )
    assert problems(INFO, res, card=CARD, text=CARD) == []


@pytest.mark.parametrize("name", ["torch", "torchvision", "ipykernel", "nvidia-cublas-cu12"])
def test_rules_never_replace_torch_or_the_kernel(name):
    res = Resolution([], [_change(name, "1.0", "2.0")])
    assert any("no debe tocarse" in p for p in problems(INFO, res, card=CARD, text=CARD))


def test_rules_preloaded_upgrade_needs_the_restart_notice():
    res = Resolution([], [_change("pillow", "11.3.0", "13.0.0")])
    assert any("ya importó al arrancar" in p for p in problems(INFO, res, card=CARD, text=CARD))
    card = CARD + f"\nte pedirá **{RESTART_STEPS}**"
    assert problems(INFO, res, card=card, text=card) == []
    # a new preloaded-named package (not in Colab) needs no restart; a stale notice is flagged
    fresh = Resolution([], [_change("pillow", None, "13.0.0")])
    assert any("pide" in p for p in problems(INFO, fresh, card=card, text=card))


def test_rules_source_builds():
    unknown = Resolution([], [_change("somepkg", None, "1.0", "somepkg-1.0.tar.gz")])
    assert any("no hay rueda" in p for p in problems(INFO, unknown, card=CARD, text=CARD))
    llama = Resolution([], [_change("llama-cpp-python", None, "0.3.36", "llama_cpp_python-0.3.36.tar.gz")])
    assert any("ficha de recursos no lo dice" in p for p in problems(INFO, llama, card=CARD, text=CARD))
    card = CARD + "\ninstala `llama-cpp-python`: se compila en 8–15 min"
    assert problems(INFO, llama, card=card, text=card) == []


def test_rules_glibc_newer_than_ubuntu_2204():
    res = Resolution([], [_change("x", None, "1", "x-1-cp313-cp313-manylinux_2_38_x86_64.whl")])
    assert any("glibc 2.38" in p for p in problems(INFO, res, card=CARD, text=CARD))
    ok = Resolution([], [_change("x", None, "1", "x-1-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")])
    assert problems(INFO, ok, card=CARD, text=CARD) == []


def test_rules_report_a_conflict():
    res = Resolution(["torch==9"], error="ERROR: ResolutionImpossible: torch==9")
    assert any("no puede instalar" in p for p in problems(INFO, res, card=CARD, text=CARD))


# --------------------------------------------------------------------------- against Colab (PyPI)


@pytest.mark.slow
@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_install_cell_on_colab(colab_run, info):
    """Issue 11.4/11.5: torch kept, nothing preloaded upgraded silently, no unannounced compile."""
    report = colab_run["notebooks"][info.name]
    assert not report.problems, report.render()
    changed = {c.name for c in report.resolution.changes}
    assert "torch" not in changed and "pillow" not in changed


@pytest.mark.slow
@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_mini_fallback_has_what_the_notebook_imports(colab_run, info):
    """Issue 11.10: after the install cell with %env COURSE_PROFILE=mini, Colab has every
    distribution the notebook (and the utils modules it uses) imports."""
    report = colab_run["notebooks"][info.name]
    after = report.resolution.final_versions(colab_run["freeze"])
    if report.no_deps:
        after.update({c.name: c.new for c in report.no_deps.changes})
    assert colab_env.missing_in_colab(info, after) == {}


@pytest.mark.slow
def test_requirements_resolve_on_python_313(colab_run):
    """Issue 11.11: requirements.txt installs on Python 3.13 (pip's resolver, wheels only but
    for llama-cpp-python, which PyPI ships as source)."""
    res = colab_run["pins"]
    assert not res.error, res.error
    versions = {c.name: c.new for c in res.changes}
    assert versions["torch"] == "2.13.0" and versions["transformers"] == "5.23.0"
    assert [c.name for c in res.changes if c.is_sdist] == ["llama-cpp-python"]


# --------------------------------------------------------------------------- the restart guard


@pytest.fixture(autouse=False)
def marker(tmp_path, monkeypatch):
    from utils.core import colab_runtime

    path = tmp_path / "restart-marker"
    monkeypatch.setattr(colab_runtime, "MARKER", path)
    return path


def test_restart_guard_sees_a_changed_distribution(marker):
    before = imported_versions(modules=["pytest"], top_level={"pytest": ["pytest"]})
    assert before == {"pytest": pytest.__version__}
    assert changed_since(before) == []
    require_fresh_imports(before)  # nothing changed: no restart
    stale = {"pytest": "0.0.1"}
    assert changed_since(stale) == [("pytest", "0.0.1", pytest.__version__)]
    with pytest.raises(RestartRequired) as err:
        require_fresh_imports(stale)
    assert RESTART_STEPS in str(err.value) and "pytest 0.0.1" in str(err.value)


def test_restart_guard_insists_until_the_process_restarts(marker, monkeypatch):
    """Running the cell again without restarting: pip changes nothing now, but the old
    modules are still loaded, so the guard asks again; a new process (after the restart) passes."""
    with pytest.raises(RestartRequired):
        require_fresh_imports({"pytest": "0.0.1"})
    fresh = {"pytest": pytest.__version__}
    with pytest.raises(RestartRequired) as err:
        require_fresh_imports(fresh)
    assert "pytest 0.0.1" in str(err.value)
    monkeypatch.setattr(os, "getpid", lambda: -1)  # the restarted runtime
    require_fresh_imports(fresh)
    assert not marker.exists()


def test_install_cell_is_valid_ipython():
    from IPython.core.inputtransformer2 import TransformerManager

    for info in NOTEBOOKS:
        compile(TransformerManager().transform_cell(setup_cell_source(info)), info.name, "exec")


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_install_cell_records_before_pip_and_checks_after(info):
    lines = setup_cell_source(info).splitlines()
    pips = [i for i, line in enumerate(lines) if "%pip install" in line]
    record = next(i for i, line in enumerate(lines) if "imported_versions()" in line)
    check = next(i for i, line in enumerate(lines) if "require_fresh_imports(before)" in line)
    assert pips and record < min(pips) and check > max(pips)


# --------------------------------------------------------------------------- Python 3.13, Colab's versions


@pytest.mark.slow
def test_utils_and_first_cells_run_on_python_313_with_colabs_versions(colab_run, python313, tmp_path):
    """A real 3.13 venv with Colab's numpy/pandas/pillow/matplotlib (and what the install cells
    leave of pyarrow, pydantic, jinja2, tqdm), without torch: every utils module imports, and
    each notebook's first cell runs in mini.  Also checks why pyarrow counts as preloaded."""
    versions = colab_env.light_versions(colab_run["notebooks"].values(), colab_run["freeze"])
    assert versions["pillow"] == "11.3.0" and versions["numpy"] == "2.1.3" and versions["pandas"] == "2.2.3"
    py = colab_run["light"]
    colab_env.install_into(py, versions)  # what pip changes transitively (pyarrow for datasets)
    result = colab_env.run_light(py, tmp_path)
    assert result["python"] == "3.13"
    left_out = {f"ModuleNotFoundError: No module named '{m}'" for m in colab_env.LEFT_OUT_MODULES}
    failures = {m: why for m, why in result["import_failures"].items() if why not in left_out}
    assert failures == {}
    assert result["first_cells"] == {i.name: f"mini: {i.name}" for i in NOTEBOOKS}
    assert result["pandas_imports_pyarrow"], "pandas no longer imports pyarrow: revisit PRELOADED"


def test_restart_guard_counts_only_loaded_parts_of_a_shared_namespace(tmp_path, monkeypatch):
    """``google.colab`` being loaded must not make every google-* distribution count: two
    installed distributions share the namespace ``nsx``; only ``nsx.a`` is loaded."""
    for dist, version, sub in (("nsx-a", "1.0", "a"), ("nsx-b", "2.0", "b")):
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "RECORD").write_text(f"nsx/{sub}/__init__.py,,\n{info.name}/METADATA,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    top_level = {"nsx": ["nsx-a", "nsx-b"]}
    assert imported_versions(modules=["nsx", "nsx.a"], top_level=top_level) == {"nsx-a": "1.0"}
    assert imported_versions(modules=["nsx", "nsx.a", "nsx.b"], top_level=top_level) == {
        "nsx-a": "1.0",
        "nsx-b": "2.0",
    }
