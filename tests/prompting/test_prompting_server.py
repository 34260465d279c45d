"""Notebook 05's helpers against the real llama.cpp server: completion, chat, JSON-schema
output, the repair loop, history trimming, and the error when no server answers (the chat
loop itself is written in the notebook: ``test_nb05_careless.py`` runs it).

The module starts its own server on a free port (not the one `make test` keeps up for the
notebooks) and stops it at the end; the last test stops it first and checks the error.
"""

from __future__ import annotations

import pytest
from llm_fixtures import config  # noqa: F401  (fixture: a free port and a temporary build/)
from pydantic import BaseModel, Field, field_validator

from utils.core.retry import RetryPolicy
from utils.prompting.chatbot import estimate_tokens, server_token_counter, trim_history
from utils.prompting.structured_output import ask_json
from utils.services.llm_client import (
    Completion,
    Endpoint,
    LLMClient,
    LLMContextError,
    LLMUnavailableError,
    get_completion,
)
from utils.services.llm_server import LOCAL_API_KEY, start, stop

pytestmark = pytest.mark.server

FAST_RETRY = RetryPolicy(attempts=2, base_delay=0.05, max_delay=0.1)


@pytest.fixture(scope="module")
def server(config):
    """The course server on a free port (``config`` from test_llm_server stops it after)."""
    start(config)
    return config


@pytest.fixture
def client(server) -> LLMClient:
    endpoint = Endpoint(server.base_url, server.model_alias, LOCAL_API_KEY, is_course_server=True)
    return LLMClient(endpoint, timeout_s=120, max_tokens=40, retry=FAST_RETRY)


def test_completion_reports_latency_and_tokens(client):
    reply = get_completion("What is the capital of France? Answer in one word.", client=client, max_tokens=8)
    assert "paris" in reply.text.lower()
    assert reply.prompt_tokens > 5 and 0 < reply.completion_tokens <= 8
    assert reply.latency_s > 0 and reply.tokens_per_s > 0
    assert client.calls == [reply] and client.usage().calls == 1
    raw = client.complete_text("The capital of France is", max_tokens=5)  # no chat template
    assert raw.completion_tokens > 0 and raw.prompt_tokens < reply.prompt_tokens


def test_chat_sends_the_whole_conversation(client):
    conversation = [
        {"role": "user", "content": "Remember this: the secret word is banana."},
        {"role": "assistant", "content": "OK, I will remember it."},
        {"role": "user", "content": "What is the secret word?"},
    ]
    reply = client.chat(conversation, max_tokens=12)
    assert "banana" in reply.text.lower()
    alone = client.chat(conversation[-1:], max_tokens=1)
    assert reply.prompt_tokens > alone.prompt_tokens


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population_millions: float


def test_json_schema_constrained_output_always_parses(client):
    result = ask_json("Tell me about Tokyo.", City, constrained=True, repairs=0, client=client, max_tokens=80)
    assert result.valid_first_try, result.describe()
    assert isinstance(result.value.population_millions, float) and client.schema_style == "llama-cpp"


def test_json_schema_form_falls_back_when_the_server_rejects_it(server):
    # The same server reached through LLM_BASE_URL: the OpenAI form is tried first, rejected,
    # and the llama-cpp form is used (and remembered) instead.
    other = Endpoint(server.base_url, server.model_alias, LOCAL_API_KEY, is_course_server=False)
    client = LLMClient(other, timeout_s=120, max_tokens=40, retry=FAST_RETRY)
    result = ask_json("Tell me about Paris.", City, constrained=True, repairs=0, client=client)
    assert result.ok and client.schema_style == "llama-cpp" and len(client.calls) == 1


class BrokenFirstAnswer(LLMClient):
    """Fault injection: the first answer is broken JSON; later calls go to the real server."""

    def chat(self, messages, **options):
        if not self.calls:
            broken = Completion('Sure! {"name": "Paris", "country": ', self.endpoint.model, 0.1, 10, 10, "stop")
            self.calls.append(broken)
            return broken
        self.sent = list(messages)
        return super().chat(messages, **options)


def test_repair_loop_sends_the_error_back_and_recovers(client):
    faulty = BrokenFirstAnswer(client.endpoint, timeout_s=120, max_tokens=80, retry=FAST_RETRY)
    result = ask_json("Give me data about Paris.", City, constrained=True, repairs=1, client=faulty)
    assert result.repaired and result.outcome == "tras reparar"
    assert "JSON mal formado" in result.attempts[0].error
    roles = [m["role"] for m in faulty.sent]
    assert roles == ["user", "assistant", "user"]
    assert faulty.sent[1]["content"].startswith("Sure!") and "JSON mal formado" in faulty.sent[2]["content"]


class NeverValid(BaseModel):
    answer: int

    @field_validator("answer")
    @classmethod
    def reject(cls, value: int) -> int:
        raise ValueError("rejected on purpose")


def test_repair_loop_gives_up_after_the_allowed_repairs(client):
    result = ask_json(
        'Reply with {"answer": 1}', NeverValid, constrained=True, repairs=1, client=client, max_tokens=20
    )
    assert not result.ok and result.outcome == "inválido" and len(result.attempts) == 2
    assert all("rejected on purpose" in a.error for a in result.attempts)
    # the repair request carries the first answer and the error: a longer prompt
    assert result.attempts[1].completion.prompt_tokens > result.attempts[0].completion.prompt_tokens + 10


def test_history_trimmed_to_budget_fits_on_the_server(client):
    exact = server_token_counter(client)
    assert exact is not estimate_tokens and exact("hola") > 0
    history = [{"role": "system", "content": "Eres el camarero de una cafetería."}]
    for i in range(12):
        history += [
            {"role": "user", "content": f"Pregunta {i}: ¿tenéis cruasanes, tostadas y zumo de naranja natural?"},
            {"role": "assistant", "content": f"Respuesta {i}: sí, tenemos cruasanes, tostadas y zumo natural."},
        ]
    history.append({"role": "user", "content": "¿Cuánto cuesta un café con leche?"})
    for count in (exact, estimate_tokens):
        window = trim_history(history, 200, count)
        assert window[0] == history[0] and window[-1] == history[-1] and len(window) < len(history)
        reply = client.chat(window, max_tokens=1)
        assert reply.prompt_tokens <= 200


def test_context_overflow_is_a_clean_spanish_message(client):
    """A prompt longer than n_ctx: the server answers 400; the learner gets what to do, not a traceback."""
    too_long = "Repite esta frase con calma, por favor. " * 600  # ~5,000 tokens for a 2,048 window
    with pytest.raises(LLMContextError) as info:
        get_completion(too_long, client=client, max_tokens=20)
    message = str(info.value)
    assert message.startswith("La conversación no cabe en la ventana de contexto del modelo (")
    assert "el límite es 2048" in message and "max_tokens=20" in message
    assert "acorta el historial" in message and "n_ctx" in message and "scripts/llm_server stop" in message
    assert info.value.status_code == 400 and info.value._render_traceback_()[0].startswith("\u274c")
    assert client.calls == []  # nothing answered, nothing logged

    with pytest.raises(LLMContextError):  # not mistaken for a server without schema support
        ask_json(too_long, City, constrained=True, repairs=1, client=client)
    assert client.schema_style is None


def test_no_server_error_says_how_to_start_one(server, client):
    assert stop(server.port) is True
    with pytest.raises(LLMUnavailableError) as info:
        get_completion("hola", client=client)
    message = str(info.value)
    assert server.base_url in message and "2 intento(s)" in message
    assert "scripts/llm_server start" in message and ":1234/v1" in message and ":11434/v1" in message
    assert info.value._render_traceback_()[0].startswith("\u274c")
