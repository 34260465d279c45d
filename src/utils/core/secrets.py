"""Secrets (API keys, tokens) from the environment or Colab's 🔑 panel — never printed.

Values are looked up in this order: an environment variable with the same name, then
Colab ``userdata`` (the "Secrets" panel, with notebook access switched on).  Nothing here
prints or logs a value; :func:`describe_secret` says only where a secret came from and
how long it is.

Two guards keep secrets where they belong:

* :func:`mask_credentials` hides ``user:key@`` in URLs (``http://user:key@host`` →
  ``http://***@host``) in every message the course shows (errors, status lines, logs);
* :func:`service_env` is the environment of the local servers the course starts: the
  learner's tokens and keys (``HF_TOKEN``, ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``…) are
  left out, since a server never needs them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from utils.core.errors import CourseError


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
    except Exception:  # noqa: BLE001 - SecretNotFoundError, NotebookAccessError, TimeoutException
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
        MissingSecretError: ``Falta NAME: guárdalo en los secretos de Colab o expórtalo…``.
    """
    found = _lookup(name)
    if found is not None:
        return found[0]
    if not required:
        return None
    where = f"; consulta el README §{readme_section}" if readme_section else ""
    raise MissingSecretError(
        f"Falta {name}: guárdalo en los secretos de Colab (panel 🔑, con acceso del cuaderno "
        f"activado) o expórtalo (`export {name}=...`){where}."
    )


def describe_secret(name: str) -> SecretSource | None:
    """Say where ``name`` is set and how long it is, without revealing it."""
    found = _lookup(name)
    if found is None:
        return None
    return SecretSource(name=name, source=found[1], length=len(found[0]))


# --------------------------------------------------------------------------- guards

#: ``scheme://userinfo@`` — the userinfo (user, or user:password) is what gets masked.
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#@'\"]*@)+")

#: Names that hold secrets: HF_TOKEN, OPENAI_API_KEY, GITHUB_TOKEN, AWS_SECRET_ACCESS_KEY…
_SECRET_NAME = re.compile(
    r"(^|_)(TOKEN|TOKENS|SECRET|SECRETS|PASSWORD|PASSWD|PASSPHRASE|APIKEY|API_KEY|KEY|CREDENTIAL|CREDENTIALS|AUTH)(_|$)"
    r"|TOKEN$|SECRET$|PASSWORD$|APIKEY$",
    re.IGNORECASE,
)


def mask_credentials(text: str) -> str:
    """``text`` with the ``user:key@`` part of every URL replaced by ``***@``.

    >>> mask_credentials("no responde http://ana:sk-123@10.0.0.2:8000/v1")
    'no responde http://***@10.0.0.2:8000/v1'
    """
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)


def is_secret_name(name: str) -> bool:
    """True for variable names that usually hold a secret (``HF_TOKEN``, ``*_API_KEY``…)."""
    return bool(_SECRET_NAME.search(name))


def service_env(
    keep: Iterable[str] = (), environ: Mapping[str, str] | None = None, drop: Iterable[str] = ()
) -> dict[str, str]:
    """The environment for a local server the course starts, without the learner's secrets.

    Left out: variables whose name looks like a secret (:func:`is_secret_name`), variables
    whose value is a URL with credentials, and ``drop``.  ``keep`` names variables the
    server needs even though their name looks secret (its own configured keys).
    """
    source = os.environ if environ is None else environ
    kept, dropped = set(keep), set(drop)
    return {
        name: value
        for name, value in source.items()
        if name in kept or (name not in dropped and not is_secret_name(name) and mask_credentials(value) == value)
    }
