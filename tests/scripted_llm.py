"""A distilabel LLM that returns scripted replies: for unit tests that inject bad outputs.

Only for fault injection (malformed replies, failed calls) and for counting calls; every
other test talks to the real llama.cpp server.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import PrivateAttr

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from distilabel.models.llms.base import LLM
    from distilabel.models.llms.utils import prepare_output


class ScriptedLLM(LLM):
    """Returns ``replies`` in turn (``None`` = a failed call); counts the calls."""

    replies: list[Any] = []  # noqa: RUF012 - a pydantic field: pydantic copies the default per instance
    _calls: int = PrivateAttr(default=0)

    @property
    def model_name(self) -> str:
        return "scripted"

    @property
    def calls(self) -> int:
        return self._calls

    def generate(self, inputs: list, num_generations: int = 1, **kwargs: Any) -> list:
        outputs = []
        for _ in inputs:
            reply = self.replies[self._calls % len(self.replies)]
            self._calls += 1
            outputs.append(prepare_output([reply], input_tokens=[10], output_tokens=[len(str(reply or "")) // 4]))
        return outputs
