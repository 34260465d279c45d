"""The command line of ``scripts/llm_server`` and ``scripts/argilla_server``, in Spanish.

``argparse`` writes its own messages in English (``invalid choice``, ``unrecognized
arguments``…); :class:`SpanishArgumentParser` says them in Spanish, with what to type
instead, and turns the service modules' errors and Ctrl-C into one clean ``error: …`` line.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn

from utils.core.secrets import mask_credentials

_TRANSLATIONS = (
    (r"argument (\S+): invalid choice: (.+?) \(choose from (.+)\)", r"el argumento \1 no admite \2; elige uno de: \3"),
    (r"the following arguments are required: (.+)", r"falta el argumento obligatorio: \1"),
    (r"unrecognized arguments: (.+)", r"argumentos no reconocidos: \1"),
    (r"argument (\S+): expected one argument", r"el argumento \1 necesita un valor"),
    (r"argument (\S+): (.+)", r"el argumento \1 no es válido (\2)"),
)


class _SpanishHelp(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        # prefix "" (not None) is argparse building a subcommand's prog: no «uso: » there
        super().add_usage(usage, actions, groups, "uso: " if prefix is None else prefix)


class SpanishArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose help, usage and errors are in Spanish."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, formatter_class=_SpanishHelp, add_help=False, **kwargs)
        self._positionals.title = "argumentos"
        self._optionals.title = "opciones"
        self.add_argument("-h", "--help", action="help", help="muestra esta ayuda y termina")

    def error(self, message: str) -> NoReturn:
        for pattern, spanish in _TRANSLATIONS:
            if re.fullmatch(pattern, message):
                message = re.sub(pattern, spanish, message)
                break
        self.print_usage(sys.stderr)
        self.exit(2, f"error: {message}. Ayuda: `{self.prog} --help`.\n")

    def positive_seconds(self, raw: str, option: str) -> float:
        """``raw`` as a number of seconds > 0, or a Spanish usage error."""
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not value > 0 or value == float("inf"):
            self.error(f"{option}={raw!r} no es un número de segundos válido; usa, por ejemplo, {option} 300")
        return value

    def fail(self, exc: BaseException) -> int:
        """Print ``exc`` as one ``error: …`` line (Ctrl-C included); return the exit status."""
        if isinstance(exc, KeyboardInterrupt):
            print("error: interrumpido (Ctrl-C); no queda ningún servidor a medio arrancar. "
                  f"Vuelve a ejecutar `{self.prog} start` cuando quieras.", file=sys.stderr)  # fmt: skip
            return 130
        print(f"error: {mask_credentials(str(exc))}", file=sys.stderr)
        return 1
