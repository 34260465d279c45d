"""Self-checks for the ``# EJERCICIO`` cells.

A notebook module defines ``check_<something>(answer)`` functions that build a list of
:class:`Expectation` and pass it to :func:`report`, which prints ✅ or ❌ with a hint for
each and returns whether everything passed.  Checks look at what the learner's code
*does* (its output on real inputs), not at how it is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Expectation:
    """One thing the exercise expects: ``ok`` and what to show either way."""

    ok: bool
    what: str  # shown when it passes
    hint: str = ""  # shown when it fails: what to look at, not the solution


def report(title: str, expectations: Iterable[Expectation]) -> bool:
    """Print one line per expectation and a verdict; return True if all passed."""
    items = list(expectations)
    print(f"Comprobación: {title}")
    for item in items:
        if item.ok:
            print(f"  ✅ {item.what}")
        else:
            print(f"  ❌ {item.what}" + (f" — pista: {item.hint}" if item.hint else ""))
    passed = all(item.ok for item in items) and bool(items)
    print("¡Bien hecho! 🎉" if passed else "Aún no: revisa las pistas y vuelve a ejecutar la celda.")
    return passed


def attempt(function, *args, **kwargs) -> tuple[object, Expectation | None]:
    """Call the learner's ``function``; on the stub or an error, the failed expectation to show.

    Returns ``(value, None)`` when it ran and returned something, else ``(None, expectation)``:
    ``raise NotImplementedError`` or ``None`` say the exercise is still the stub; any other
    exception is shown with its type, so a check never crashes the notebook.
    """
    name = getattr(function, "__name__", "tu función")
    try:
        value = function(*args, **kwargs)
    except NotImplementedError:
        return None, Expectation(
            False, f"`{name}` está escrita", "aún es el esqueleto: cambia `raise NotImplementedError` por tu código"
        )
    except Exception as exc:  # noqa: BLE001 - the learner's code may fail in any way
        return None, Expectation(False, f"`{name}` se ejecuta sin errores", f"lanzó {type(exc).__name__}: {exc}")
    if value is None:
        return None, Expectation(False, f"`{name}` devuelve un resultado", "devuelve None: ¿falta el `return`?")
    return value, None
