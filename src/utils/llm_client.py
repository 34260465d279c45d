"""Which OpenAI-compatible endpoint the notebooks talk to, and an ``openai`` client for it.

By default it is the course's own llama.cpp server (:mod:`utils.llm_server`).  Set
``LLM_BASE_URL`` to use any other OpenAI-compatible server with the same code:

============  ==============================  =========================================
Server        ``LLM_BASE_URL``                 Notes
============  ==============================  =========================================
course        ``http://127.0.0.1:8080/v1``     ``scripts/llm_server start`` (default)
LM Studio     ``http://localhost:1234/v1``     "Developer" tab → Start server
Ollama        ``http://localhost:11434/v1``    ``ollama serve``; ``LLM_MODEL=qwen2.5:1.5b``
vLLM          ``http://localhost:8000/v1``     ``vllm serve <model>``
OpenAI        ``https://api.openai.com/v1``    needs ``LLM_API_KEY``
============  ==============================  =========================================

``LLM_MODEL`` names the model (default: the first one the server lists) and
``LLM_API_KEY`` the key (environment or Colab secrets; local servers accept any).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from utils.secrets import get_secret
from utils.settings import CourseSettings, get_settings

#: Base URLs of popular local servers, for the notebooks' explanations.
KNOWN_SERVERS: dict[str, str] = {
    "course": "http://127.0.0.1:8080/v1",
    "lmstudio": "http://localhost:1234/v1",
    "ollama": "http://localhost:11434/v1",
    "vllm": "http://localhost:8000/v1",
}


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint. ``api_key`` is never shown by ``repr``."""

    base_url: str
    model: str
    api_key: str
    is_course_server: bool

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.base_url!r}, model={self.model!r}, course_server={self.is_course_server})"


def resolve_endpoint(settings: CourseSettings | None = None) -> Endpoint:
    """The endpoint from ``LLM_BASE_URL``/``LLM_MODEL``/``LLM_API_KEY``, else the course server."""
    from utils.llm_server import LOCAL_API_KEY, port_from_env

    settings = settings or get_settings()
    base_url = os.environ.get("LLM_BASE_URL", "").strip().rstrip("/")
    if not base_url:
        return Endpoint(
            base_url=f"http://127.0.0.1:{port_from_env()}/v1",
            model=settings.llm.model_alias,
            api_key=LOCAL_API_KEY,
            is_course_server=True,
        )
    key = get_secret("LLM_API_KEY", required=False) or "not-needed"
    model = os.environ.get("LLM_MODEL", "").strip() or _first_model(base_url, key)
    return Endpoint(base_url=base_url, model=model, api_key=key, is_course_server=False)


def _first_model(base_url: str, api_key: str) -> str:
    from openai import OpenAI, OpenAIError

    try:
        models = OpenAI(base_url=base_url, api_key=api_key, timeout=10, max_retries=1).models.list()
        return models.data[0].id
    except (OpenAIError, IndexError) as exc:
        raise RuntimeError(
            f"Could not list the models of LLM_BASE_URL={base_url} ({exc}). Is the server "
            "running? Set LLM_MODEL to the model name if the server does not list models."
        ) from None


def make_client(endpoint: Endpoint | None = None, *, timeout: float = 120.0, max_retries: int = 2):
    """An ``openai.OpenAI`` client for ``endpoint`` (default: :func:`resolve_endpoint`)."""
    from openai import OpenAI

    endpoint = endpoint or resolve_endpoint()
    return OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=timeout, max_retries=max_retries)
