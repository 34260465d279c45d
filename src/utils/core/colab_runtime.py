"""Around ``%pip install`` in Colab: ask for a restart only when it is really needed.

Colab imports some libraries when the runtime starts (pandas, and with it pyarrow; numpy,
PIL, matplotlib…).  If the install cell replaces one of them on disk, the running Python keeps
the old module in memory and the rest of the notebook would mix two versions.  The install
cell records :func:`imported_versions` before pip and calls :func:`require_fresh_imports`
after it: if pip changed the distribution of an already-imported module, it stops with the
restart instructions.  After the restart the same cell installs nothing and goes on.

Uses the standard library only: it runs before and right after pip.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from utils.core.errors import CourseError

RESTART_STEPS = "Entorno de ejecución → Reiniciar sesión"
#: Remembers, for this process, that a restart was asked for: running the cell again without
#: restarting installs nothing new, yet the old modules are still in memory.
MARKER = Path(tempfile.gettempdir()) / "curso-llm-restart-required"


class RestartRequired(CourseError):
    """pip replaced distributions whose modules this Python process had already imported."""

    def __init__(self, changed: list[tuple[str, str, str]]):
        self.changed = changed
        listed = ", ".join(f"{dist} {before} → {after}" for dist, before, after in changed)
        super().__init__(
            f"La instalación cambió bibliotecas que Colab ya había cargado al arrancar ({listed}). "
            f"Reinicia la sesión ({RESTART_STEPS}) y vuelve a ejecutar esta celda: "
            "la segunda vez no instala nada y sigue adelante."
        )

    def _render_traceback_(self) -> list[str]:  # the message only, no stack trace
        return [str(self)]


def _installed(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _loads_from(dist: str, namespace: str, loaded: set[str]) -> bool:
    """Whether a module of ``dist`` under the shared top-level ``namespace`` is loaded
    (``google.protobuf`` for protobuf, while ``google.colab`` belongs to google-colab)."""
    files = importlib.metadata.files(dist) or []
    subpackages = {
        f"{namespace}.{f.parts[1].removesuffix('.py')}" for f in files if len(f.parts) > 1 and f.parts[0] == namespace
    }
    return bool(subpackages & loaded)


def imported_versions(
    modules: Iterable[str] | None = None,
    top_level: Mapping[str, list[str]] | None = None,
) -> dict[str, str]:
    """``{distribution: installed version}`` for every distribution with an imported module.

    ``modules`` defaults to the names in :data:`sys.modules`; ``top_level`` (module →
    distributions) to :func:`importlib.metadata.packages_distributions`.  Under a namespace
    that several distributions share (``google``), only those with a loaded module count.
    """
    loaded = set(sys.modules if modules is None else modules)
    top_level = importlib.metadata.packages_distributions() if top_level is None else top_level
    versions = {}
    for name in {m.partition(".")[0] for m in loaded}:
        dists = list(dict.fromkeys(top_level.get(name, [])))
        for dist in dists:
            if len(dists) > 1 and not _loads_from(dist, name, loaded):
                continue
            version = _installed(dist)
            if version is not None:
                versions[dist] = version
    return versions


def changed_since(before: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(distribution, version before, version now)`` for each one whose version changed."""
    changed = []
    for dist, version in before.items():
        now = _installed(dist)
        if now is not None and now != version:
            changed.append((dist, version, now))
    return sorted(changed)


def require_fresh_imports(before: Mapping[str, str]) -> None:
    """Raise :class:`RestartRequired` when pip changed an already-imported distribution, or
    when this same process was already told to restart (the cell was run again without it)."""
    changed = changed_since(before)
    if not changed and MARKER.is_file():
        pid, *rows = MARKER.read_text(encoding="utf-8").splitlines()
        if pid == str(os.getpid()):
            changed = [tuple(row.split(" ", 2)) for row in rows]  # type: ignore[misc]
    if changed:
        MARKER.write_text("\n".join([str(os.getpid()), *(" ".join(c) for c in changed)]) + "\n", encoding="utf-8")
        raise RestartRequired(changed)
    MARKER.unlink(missing_ok=True)
