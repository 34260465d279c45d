"""Repository hygiene: clean notebooks, badges, pins, no secrets, clean UTF-8."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_tools.catalogue import PUBLISHING, REPO_SLUG, colab_requirement, setup_cell_source
from utils.core.course import NOTEBOOKS, read_pins

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PATHS = [ROOT / info.repo_path for info in NOTEBOOKS]


def tracked_files() -> list[Path]:
    """Files git tracks (falls back to a walk when this is not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        files = [ROOT / p for p in out.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        skip = {".git", ".venv", "build", "__pycache__", ".pytest_cache"}
        files = [p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)]
    return [p for p in files if p.is_file()]


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- notebooks


def test_the_five_notebooks_exist_in_order():
    assert [p.name for p in sorted((ROOT / "notebooks").glob("*.ipynb"))] == [i.filename for i in NOTEBOOKS]
    assert [i.name[:2] for i in NOTEBOOKS] == ["01", "02", "03", "04", "05"]
    assert list(PUBLISHING) == [i.name for i in NOTEBOOKS], "course_tools.catalogue.PUBLISHING: one entry each"


@pytest.mark.parametrize("path", NOTEBOOK_PATHS, ids=lambda p: p.stem)
def test_notebook_has_no_outputs_or_execution_counts(path):
    dirty = [
        i
        for i, cell in enumerate(load(path)["cells"])
        if cell["cell_type"] == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `make sync` before committing"


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_notebook_badge_points_at_its_own_path(info):
    first = "".join(load(ROOT / info.repo_path)["cells"][0]["source"])
    urls = re.findall(r"https://colab\.research\.google\.com/github/([^)\s]+)", first)
    assert urls == [f"{REPO_SLUG}/blob/main/notebooks/{info.filename}"]


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_setup_cell_is_generated_from_the_pins(info):
    nb = load(ROOT / info.repo_path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "".join(code[0]["source"]) == setup_cell_source(info), "run `make sync`"
    pins = read_pins()
    pinned = re.findall(r'"([A-Za-z0-9_.\-\[\]]+)==([^"]+)"', "".join(code[0]["source"]))
    assert pinned, "the Colab install cell pins nothing"
    for name, version in pinned:
        assert colab_requirement(name, pins) == f"{name}=={version}"


@pytest.mark.parametrize("info", NOTEBOOKS, ids=lambda i: i.name)
def test_notebook_teaching_skeleton(info):
    cells = load(ROOT / info.repo_path)["cells"]
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "Objetivos de aprendizaje" in markdown
    assert "Ficha de recursos" in markdown
    assert "preflight(" in code
    assert f'start("{info.name}")' in code


def test_sync_check_is_clean():
    proc = subprocess.run(
        [sys.executable, "scripts/sync_notebooks.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- pins


def test_requirements_are_exact_pins():
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert "-e ." in lines, "requirements.txt must install the utils package (-e .)"
    loose = [line for line in lines if line != "-e ." and "==" not in line]
    assert not loose, f"not pinned exactly: {loose}"
    assert read_pins()["torch"] == "2.13.0"


def test_environment_yml_installs_from_requirements():
    text = (ROOT / "environment.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s*- python=3\.11\s*$", text, re.MULTILINE)
    assert re.search(r"^\s*- -r requirements\.txt\s*$", text, re.MULTILINE)
    assert "==" not in text, "versions belong in requirements.txt only"


# --------------------------------------------------------------------------- secrets

#: Keys that only work against servers the course starts on 127.0.0.1; each must be
#: documented in the README.
ALLOWED_LOCAL_KEYS = {"sk-local-llama-cpp", "curso-argilla-local-key", "curso-argilla-local"}

TOKEN_PATTERNS = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    "OpenAI key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    "Argilla key assignment": re.compile(r"(?i)argilla[_-]?api[_-]?key\W{0,3}\s*[:=]\s*['\"]?([A-Za-z0-9._\-]{8,})"),
    "key/token literal": re.compile(
        r"(?i)\b(?:api[_-]?key|token|secret|password)\b\s*[:=]\s*['\"]([A-Za-z0-9._\-/+]{20,})['\"]"
    ),
}


def find_secrets(text: str) -> list[tuple[str, str]]:
    hits = []
    for label, pattern in TOKEN_PATTERNS.items():
        for match in pattern.finditer(text):
            value = match.group(match.lastindex or 0)
            if value not in ALLOWED_LOCAL_KEYS:
                hits.append((label, value[:12] + "…"))
    return hits


def test_scanner_catches_fake_tokens():
    fake_hf = "hf_" + "aB3" * 12
    fake_openai = "sk-proj-" + "x9Y" * 10
    text = f'token = "{fake_hf}"\nOPENAI_API_KEY={fake_openai}\nARGILLA_API_KEY="{"k" * 16}"\n'
    labels = {label for label, _ in find_secrets(text)}
    assert {"Hugging Face token", "OpenAI key", "Argilla key assignment"} <= labels
    assert not find_secrets('api_key = os.environ["LLM_API_KEY"]\napi_key="sk-local-llama-cpp"')


def test_no_tokens_in_tracked_files():
    leaks = []
    for path in tracked_files():
        if path.suffix in {".png", ".jpg", ".gguf", ".bin", ".safetensors"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        leaks += [(str(path.relative_to(ROOT)), *hit) for hit in find_secrets(text)]
    assert not leaks, f"possible secrets committed: {leaks}"


def test_allowed_local_keys_are_documented():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for key in ALLOWED_LOCAL_KEYS:
        assert key in readme, f"local key {key!r} is allowed but not documented in README.md"


# --------------------------------------------------------------------------- text


# UTF-8 text decoded as Latin-1 and saved again (typical mojibake), written with escapes so this file does not match itself.
MOJIBAKE = re.compile("\u00c3[\u0080-\u00bf]|\u00e2\u20ac|\u00c2[\u00a1\u00bf]|\ufffd")


def test_text_files_are_clean_utf8():
    bad = []
    for path in tracked_files():
        if path.suffix not in {".md", ".ipynb", ".py", ".txt", ".yml", ".toml", ".json", ".jsonl", ".csv", ""}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            bad.append(f"{path.relative_to(ROOT)}: not UTF-8")
            continue
        if MOJIBAKE.search(text):
            bad.append(f"{path.relative_to(ROOT)}: mojibake {MOJIBAKE.search(text).group()!r}")
    assert not bad, bad


def test_readme_quickstart_is_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Inicio rápido.*?```(?:bash|sh)?\n(.*?)```", readme, re.DOTALL)
    assert block, "README needs an «Inicio rápido» section with a code block"
    commands = [l for l in block.group(1).splitlines() if l.strip() and not l.strip().startswith("#")]
    assert commands == ["make course", "make test"]
    assert "## English" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
