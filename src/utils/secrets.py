"""Secrets (API keys, tokens) from the environment or Colab's 🔑 panel — never printed.

Values are looked up in this order: an environment variable with the same name, then
Colab ``userdata`` (the "Secrets" panel, with notebook access switched on).  Nothing here
prints or logs a value; :func:`describe_secret` says only where a secret came from and
how long it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from utils.errors import CourseError


class MissingSecretError(CourseError):
    """A required secret is not set.  The message says how to set it."""


@dataclass(frozen=True)
class SecretSource:
    """Where a secret was found (``"env"``, ``"colab"``) and its length — never its value."""

    name: str
    source: str
    length: int


def _from_colab(name: str) -> str | None:
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        value = userdata.get(name)
    except Exception:  # SecretNotFoundError, NotebookAccessError, TimeoutException
        return None
    return value or None


def _lookup(name: str) -> tuple[str, str] | None:
    value = os.environ.get(name)
    if value:
        return value, "env"
    value = _from_colab(name)
    if value:
        return value, "colab"
    return None


def get_secret(name: str, *, required: bool = True, readme_section: str | None = None) -> str | None:
    """Return the secret ``name`` from the environment or Colab secrets.

    Args:
        name: variable name, e.g. ``"ARGILLA_API_KEY"``.
        required: raise when missing (otherwise return ``None``).
        readme_section: README section that explains this secret, named in the error.

    Raises:
        MissingSecretError: ``Falta NAME: añádelo en los secretos de Colab … o expórtalo …``.
    """
    found = _lookup(name)
    if found is not None:
        return found[0]
    if not required:
        return None
    where = f"; ver README §{readme_section}" if readme_section else ""
    raise MissingSecretError(
        f"Falta {name}: añádelo en los secretos de Colab (panel 🔑, con el acceso del cuaderno "
        f"activado) o expórtalo antes de arrancar Jupyter (`export {name}=...`){where}"
    )


def describe_secret(name: str) -> SecretSource | None:
    """Say where ``name`` is set and how long it is, without revealing it."""
    found = _lookup(name)
    if found is None:
        return None
    return SecretSource(name=name, source=found[1], length=len(found[0]))
