"""The base class of the course's learner-facing errors.

Every error a learner may meet in a notebook says what was wrong and how to fix it.  In
Jupyter (IPython), :class:`CourseError` is shown as that message alone — no stack trace —
through IPython's ``_render_traceback_`` hook; elsewhere it is an ordinary exception.
Credentials inside URLs (``http://user:key@host``) are masked in the message.
"""

from __future__ import annotations


class CourseError(RuntimeError):
    """An actionable error: the message names the problem and the fix."""

    def __init__(self, *args: object) -> None:
        from utils.core.secrets import mask_credentials  # here: utils.core.secrets imports this module

        super().__init__(*(mask_credentials(a) if isinstance(a, str) else a for a in args))

    def _render_traceback_(self) -> list[str]:  # IPython: show the message, not a traceback
        return [f"\u274c {self}"]
