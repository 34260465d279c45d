"""Stand-ins for the Hub repos each notebook's full profile uses, and their cached builds.

Each notebook ``NN`` has one builder module (``BUILDERS[NN]``) with ``build(hub: HubTree)``
that writes tiny models and datasets in the real repos' layouts (see
``REHEARSAL_API.md`` / the README section «Ensayo del perfil full»).  Modules are imported
lazily by name, so a notebook whose builder does not exist yet fails with a clear message
instead of breaking the others.

Builds are cached under ``build/rehearsal/hub/<key>/<NN>/``, where ``<key>`` hashes every
file of ``src/rehearsal/``: editing a builder (or the hub) rebuilds, nothing else does.  A
build is written to a temporary folder and renamed into place, so an interrupted build never
leaves a half-written tree behind.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import tempfile
import time
from pathlib import Path

from rehearsal.hub import HubTree

#: Notebook number -> builder module (imported only when that notebook is built).
BUILDERS: dict[str, str] = {
    "01": "rehearsal.standins.nb01",
    "02": "rehearsal.standins.nb02",
    "03": "rehearsal.standins.nb03",
    "04": "rehearsal.standins.nb04",
    "05": "rehearsal.standins.nb05",
}
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # src/rehearsal


class MissingBuilderError(RuntimeError):
    """No stand-ins exist for a notebook yet (its builder module is missing)."""


def normalize(number: str | int) -> str:
    """``1`` / ``"1"`` / ``"01"`` / ``"01_traducir…"`` -> ``"01"``; unknown numbers raise ValueError."""
    text = str(number).strip()
    digits = text.split("_", 1)[0]
    if not digits.isdigit():
        raise ValueError(f"not a notebook number: {number!r} (use one of {', '.join(BUILDERS)})")
    key = f"{int(digits):02d}"
    if key not in BUILDERS:
        raise ValueError(f"no notebook {key} (use one of {', '.join(BUILDERS)})")
    return key


def load_builder(number: str):
    """Import the builder module of notebook ``number``.

    Raises:
        MissingBuilderError: when the module does not exist yet.
    """
    key = normalize(number)
    name = BUILDERS[key]
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise  # the builder exists but one of its imports is missing: show the real error
        raise MissingBuilderError(
            f"No stand-ins for notebook {key} yet: module {name} "
            f"(src/{name.replace('.', '/')}.py) does not exist. Write its build(hub) "
            f"following REHEARSAL_API.md, or leave notebook {key} out of the run."
        ) from None
    if not callable(getattr(module, "build", None)):
        raise MissingBuilderError(f"{name} has no build(hub) function.")
    return module


def source_key() -> str:
    """Hash of every file under ``src/rehearsal/`` (the cache key of built stand-ins)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root(build_root: Path) -> Path:
    """``<build>/rehearsal/hub/<key>``: where the current sources' stand-ins live."""
    return build_root / "rehearsal" / "hub" / source_key()


def build(number: str, build_root: Path, log=print) -> HubTree:
    """Build (once per source key) the stand-ins of notebook ``number``; return their tree.

    Older keys' trees are removed when a new one is written, so the cache holds one version.
    """
    key = normalize(number)
    root = cache_root(build_root)
    target = root / key
    if (target / ".complete").is_file():
        return HubTree(target)
    module = load_builder(key)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.parent.iterdir():
        if old.is_dir() and old != root:
            shutil.rmtree(old, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    started = time.monotonic()
    try:
        module.build(HubTree(tmp))
        (tmp / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"stand-ins of notebook {key} built in {time.monotonic() - started:.0f} s -> {target}")
    return HubTree(target)
