"""The distilabel LLMs of notebook 02, for both profiles, from one call.

* mini — ``local:`` model ids: the course's llama.cpp server (SmolLM2-135M-Instruct)
  through distilabel's OpenAI-compatible class :class:`~distilabel.models.OpenAILLM`.
  ``LLM_BASE_URL`` points it at any other OpenAI-compatible server instead (LM Studio,
  Ollama, vLLM…), see :mod:`utils.llm_client`.
* full — Hub model ids: :class:`~distilabel.models.TransformersLLM` on the Colab GPU.

Only the course's own llama.cpp server gets a GBNF grammar (``extra_body={"grammar": …}``)
that forces the output format; other servers and models get the same prompt without it.
"""

from __future__ import annotations

import warnings
from typing import Any

from utils.assets import is_local
from utils.llm_client import resolve_endpoint
from utils.settings import CourseSettings

with warnings.catch_warnings():  # pydantic warns about distilabel's own field definitions
    warnings.simplefilter("ignore")
    from distilabel.models import OpenAILLM, TransformersLLM
    from distilabel.models.llms.base import LLM


def make_llm(
    model_id: str,
    *,
    max_new_tokens: int,
    temperature: float,
    grammar: str | None = None,
    seed: int | None = None,
    settings: CourseSettings | None = None,
) -> LLM:
    """A distilabel LLM for ``model_id`` (not loaded yet: ``task.load()`` does that).

    Args:
        model_id: ``local:…`` (mini: the local OpenAI-compatible server) or a Hub id (full).
        max_new_tokens / temperature: generation budget and randomness.
        grammar: GBNF grammar; only sent to the course's llama.cpp server.
        seed: sampling seed (llama.cpp server), so reruns give the same text.
    """
    if is_local(model_id):
        endpoint = resolve_endpoint(settings)
        extra: dict[str, Any] = {}
        if endpoint.is_course_server:
            extra = {k: v for k, v in (("grammar", grammar), ("seed", seed)) if v is not None}
        generation: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": temperature}
        if extra:
            generation["extra_body"] = extra
        return OpenAILLM(
            model=endpoint.model,
            base_url=endpoint.base_url,
            api_key=endpoint.api_key,
            timeout=300,
            max_retries=2,
            generation_kwargs=generation,
        )
    return TransformersLLM(
        model=model_id,
        device_map="auto",
        torch_dtype="float16",  # a T4 has no bfloat16
        generation_kwargs={
            "max_new_tokens": max_new_tokens,
            "temperature": max(temperature, 0.01),
            "do_sample": temperature > 0,
        },
    )


def ultrafeedback_grammar(n_texts: int) -> str:
    """GBNF grammar for UltraFeedback's text format, with exactly ``n_texts`` sections.

    Each section is ``#### Output for Text i`` / ``Rating: 1-5`` / ``Rationale: …`` and
    sections are separated by a blank line: what ``UltraFeedback.format_output`` parses.
    """
    if n_texts < 1:
        raise ValueError("n_texts must be at least 1")
    sections = " \"\\n\\n\" ".join(f"s{i}" for i in range(1, n_texts + 1))
    rules = [f"root ::= {sections}"]
    rules += [
        f's{i} ::= "#### Output for Text {i}\\nRating: " [1-5] "\\nRationale: " rationale'
        for i in range(1, n_texts + 1)
    ]
    rules.append(r"rationale ::= [^\n\[\]]{10,120}")
    return "\n".join(rules) + "\n"
