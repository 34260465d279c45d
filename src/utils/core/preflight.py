"""Pre-flight checks: stop early, with a clear fix, instead of failing halfway.

Each notebook calls :func:`preflight` right after choosing its profile, with what it
needs (packages, GPU and VRAM, free disk, secrets, local services, offline assets).  It
prints one line per check and, if anything is missing, raises :class:`PreflightError`
whose message lists every problem with the command that fixes it.  In Jupyter the error
is shown as that message only, not as a stack trace.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from utils.core.course import normalize_name, read_pins
from utils.core.errors import CourseError
from utils.core.paths import build_dir
from utils.core.secrets import describe_secret, mask_credentials

#: Set by ``python -m rehearsal run``: the full profile rehearsed on CPU against stand-ins.
REHEARSAL_ENV = "COURSE_REHEARSAL"


def in_rehearsal() -> bool:
    """True inside the full-profile rehearsal (``COURSE_REHEARSAL=1``; see ``make rehearse``)."""
    return os.environ.get(REHEARSAL_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Check:
    """The outcome of one check; ``fix`` says how to solve a failure."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False  # ok, but worth a look (e.g. a version other than the pin)


@dataclass(frozen=True)
class Service:
    """A local HTTP service a notebook talks to."""

    name: str
    url: str  # a GET on it must answer 2xx
    how_to_start: str


class PreflightError(CourseError):
    """One or more requirements are missing; the message says how to fix each."""

    def __init__(self, failures: Sequence[Check]):
        self.failures = list(failures)
        lines = [
            f"Comprobación previa fallida: {len(self.failures)} problema(s) que resolver antes de ejecutar este cuaderno:"
        ]
        for check in self.failures:
            lines.append(f"  ✘ {check.name}: {check.detail}")
            if check.fix:
                lines.append(f"    → {check.fix}")
        super().__init__("\n".join(lines))

    def _render_traceback_(self) -> list[str]:  # one line per problem, no traceback
        return str(self).splitlines()


# --------------------------------------------------------------------------- single checks


def check_package(dist: str, pins: dict[str, str] | None = None) -> Check:
    """Is distribution ``dist`` installed, at the version pinned in requirements.txt?"""
    base = dist.partition("[")[0]
    try:
        version = importlib.metadata.version(base)
    except importlib.metadata.PackageNotFoundError:
        pin = (pins or {}).get(normalize_name(base))
        spec = f"{base}=={pin}" if pin else base
        return Check(
            f"paquete {base}",
            False,
            "no está instalado",
            f"ejecuta `make setup` (en local) o `%pip install {spec}` (en Colab)",
        )
    pin = (pins or {}).get(normalize_name(base))
    if pin and version != pin and not version.startswith(pin + "+"):
        return Check(
            f"paquete {base}",
            True,
            f"{version} (el curso fija {pin}; otras versiones pueden comportarse distinto)",
            warning=True,
        )
    return Check(f"paquete {base}", True, version)


def check_gpu(min_vram_gb: float) -> Check:
    """Is a CUDA GPU with at least ``min_vram_gb`` GiB visible to PyTorch?

    In the full-profile rehearsal (:func:`in_rehearsal`) a missing GPU passes with a note:
    the rehearsal runs the full code path on CPU with tiny stand-in models.
    """
    fix = (
        "en Colab: Entorno de ejecución → Cambiar tipo de entorno → GPU (T4); "
        "o usa el perfil mini en CPU: `export COURSE_PROFILE=mini`"
    )
    try:
        import torch
    except ImportError:
        return Check("GPU", False, "PyTorch no está instalado", "ejecuta `make setup`")
    if not torch.cuda.is_available():
        if in_rehearsal():
            return Check("GPU", True, f"sin GPU: ensayo del perfil full en CPU ({REHEARSAL_ENV}=1)", warning=True)
        return Check("GPU", False, "no se ve ninguna GPU CUDA", fix)
    props = torch.cuda.get_device_properties(0)
    vram = props.total_memory / 2**30
    if vram < min_vram_gb:
        return Check(
            "GPU",
            False,
            f"{props.name} tiene {vram:.1f} GiB y este perfil necesita {min_vram_gb:.0f} GiB",
            fix,
        )
    return Check("GPU", True, f"{props.name}, {vram:.1f} GiB")


#: Free GiB the full-profile rehearsal needs: its stand-ins are a few MiB each, so the full
#: profile's Colab-sized need (weights of real models) is only a warning there (measured: a
#: rehearsal of all five notebooks writes under 1 GiB).
REHEARSAL_DISK_GB = 2.0


def check_disk(min_free_gb: float, path: Path | None = None) -> Check:
    """Is there at least ``min_free_gb`` GiB free where outputs are written?

    In the full-profile rehearsal (:func:`in_rehearsal`) a shortfall passes with a note as long
    as :data:`REHEARSAL_DISK_GB` is free: the stand-ins take megabytes, not the real weights.
    """
    target = path or build_dir()
    free = shutil.disk_usage(target).free / 2**30
    if free < min_free_gb and in_rehearsal() and free >= REHEARSAL_DISK_GB:
        return Check(
            "disco",
            True,
            f"{free:.1f} GiB libres; en Colab el perfil full necesita {min_free_gb:.0f} GiB, "
            f"el ensayo con sustitutos ({REHEARSAL_ENV}=1) solo {REHEARSAL_DISK_GB:.0f} GiB",
            warning=True,
        )
    if free < min_free_gb:
        return Check(
            "disco",
            False,
            f"{free:.1f} GiB libres en {target}; hacen falta {min_free_gb:.0f} GiB",
            "libera espacio (p. ej. `make clean`, o borra ~/.cache/huggingface)",
        )
    return Check("disco", True, f"{free:.0f} GiB libres")


def check_secret(name: str, readme_section: str | None = None) -> Check:
    """Is secret ``name`` set (environment or Colab secrets)?  Never shows its value."""
    found = describe_secret(name)
    if found is None:
        where = f"; consulta el README §{readme_section}" if readme_section else ""
        return Check(
            f"secreto {name}",
            False,
            "no está definido",
            f"guárdalo en los secretos de Colab (panel 🔑) o `export {name}=...`{where}",
        )
    source = {"env": "variable de entorno", "colab": "secretos de Colab"}.get(found.source, found.source)
    return Check(f"secreto {name}", True, f"definido ({source}, {found.length} caracteres)")


def check_service(service: Service, timeout: float = 3.0) -> Check:
    """Does ``service.url`` answer a GET with a 2xx status?  (Credentials in it are masked.)"""
    shown = mask_credentials(service.url)
    try:
        with urllib.request.urlopen(service.url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = _why_no_answer(getattr(exc, "reason", exc), timeout)
        return Check(service.name, False, f"{shown} no responde ({reason})", service.how_to_start)
    if 200 <= status < 300:
        return Check(service.name, True, f"{shown} responde")
    return Check(service.name, False, f"{shown} respondió HTTP {status}", service.how_to_start)


def _why_no_answer(reason: object, timeout: float) -> str:
    """The operating system's reason (English) said in Spanish."""
    if isinstance(reason, ConnectionRefusedError):
        return "conexión rechazada: no hay nada escuchando en ese puerto"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"sin respuesta en {timeout:.0f} s"
    if isinstance(reason, socket.gaierror):
        return "no se encuentra ese nombre de máquina"
    if isinstance(reason, ConnectionResetError):
        return "la conexión se cortó"
    return f"error de red: {mask_credentials(str(reason))}"


def check_asset(name: str, locate: Callable[[], object]) -> Check:
    """Run ``locate`` (e.g. :func:`utils.core.assets.smollm2_gguf_path`); its error text is the fix."""
    try:
        found = locate()
    except Exception as exc:  # noqa: BLE001 - the asset helpers raise errors that name the install command
        return Check(f"recurso {name}", False, "no está disponible", str(exc))
    return Check(f"recurso {name}", True, str(found))


# --------------------------------------------------------------------------- the call


def preflight(
    *,
    packages: Iterable[str] = (),
    gpu_gb: float | None = None,
    disk_gb: float | None = None,
    secrets: Iterable[str] = (),
    services: Iterable[Service] = (),
    extra: Iterable[Check] = (),
    readme_section: str | None = None,
    quiet: bool = False,
) -> list[Check]:
    """Check what a notebook needs; print the results; raise if anything is missing.

    Args:
        packages: distributions that must be installed (compared with the pins).
        gpu_gb: if set, a CUDA GPU with at least this many GiB is required.
        disk_gb: if set, free GiB required under ``build/``.
        secrets: names that must be set in the environment or Colab secrets.
        services: local HTTP services that must answer.
        extra: checks computed by the caller (e.g. :func:`check_asset`).
        readme_section: README section named in secret errors.
        quiet: do not print the table.

    Returns:
        All checks (when every one passed).

    Raises:
        PreflightError: listing each failed check and its fix.
    """
    try:
        pins = read_pins()
    except OSError:
        pins = {}
    checks: list[Check] = [check_package(p, pins) for p in packages]
    if gpu_gb is not None:
        checks.append(check_gpu(gpu_gb))
    if disk_gb is not None:
        checks.append(check_disk(disk_gb))
    checks += [check_secret(s, readme_section) for s in secrets]
    checks += [check_service(s) for s in services]
    checks += list(extra)
    if not quiet:
        for check in checks:
            mark = "✔" if check.ok and not check.warning else ("⚠" if check.ok else "✘")
            print(mask_credentials(f"{mark} {check.name}: {check.detail}"))
    failures = [c for c in checks if not c.ok]
    if failures:
        raise PreflightError(failures)
    return checks
