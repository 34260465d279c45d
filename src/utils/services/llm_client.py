"""Which OpenAI-compatible endpoint the notebooks talk to, and an ``openai`` client for it.

By default it is the course's own llama.cpp server (:mod:`utils.services.llm_server`);
``LLM_BASE_URL``, ``LLM_MODEL`` and ``LLM_API_KEY`` choose any other (README §Servidor LLM
local lists the usual ones; :data:`SERVER_PRESETS` says how to start them).

Calling the model (notebook 05 and anyone who wants timings)::

    from utils.services.llm_client import get_completion, chat
    reply = get_completion("¿Cuál es la capital de Francia?", system="Responde en una palabra.")
    print(reply.text, reply.stats_line())      # latency, tokens and tokens/s
    reply = chat([{"role": "user", "content": "Hola"}], max_tokens=50)

Each call has a timeout and a bounded number of retries (:mod:`utils.core.retry`); when no
server answers, :class:`LLMUnavailableError` says how to start one, and a conversation too
long for the model's context window is :class:`LLMContextError` (what to shorten), not a
traceback.  Credentials in ``LLM_BASE_URL`` (``http://user:key@host``) never appear in a
message.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from utils.core.errors import CourseError
from utils.core.retry import RetryPolicy, retry_call
from utils.core.secrets import get_secret, mask_credentials
from utils.core.settings import CourseSettings, get_settings

if TYPE_CHECKING:
    from utils.core.preflight import Service


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible endpoint. ``api_key`` is never shown by ``repr``."""

    base_url: str
    model: str
    api_key: str
    is_course_server: bool

    def __repr__(self) -> str:
        url = mask_credentials(self.base_url)
        return f"Endpoint(base_url={url!r}, model={self.model!r}, course_server={self.is_course_server})"


def resolve_endpoint(settings: CourseSettings | None = None) -> Endpoint:
    """The endpoint from ``LLM_BASE_URL``/``LLM_MODEL``/``LLM_API_KEY``, else the course server."""
    from utils.services.llm_server import LOCAL_API_KEY, port_from_env

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
        raise LLMUnavailableError(
            base_url,
            f"no se pudo pedir la lista de modelos de LLM_BASE_URL ({exc.__class__.__name__}); si el "
            "servidor está en marcha pero no lista modelos, pon su nombre en LLM_MODEL",
        ) from None


def make_client(endpoint: Endpoint | None = None, *, timeout: float = 120.0, max_retries: int = 2):
    """An ``openai.OpenAI`` client for ``endpoint`` (default: :func:`resolve_endpoint`)."""
    from openai import OpenAI

    endpoint = endpoint or resolve_endpoint()
    return OpenAI(base_url=endpoint.base_url, api_key=endpoint.api_key, timeout=timeout, max_retries=max_retries)


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True)
class ServerPreset:
    """A popular OpenAI-compatible server: where it listens by default and how to start it."""

    label: str
    base_url: str
    example_model: str  # an id that server lists (what ``LLM_MODEL`` takes)
    how_to_start: str


#: Documented defaults for the servers the course mentions (README §Servidor LLM local).
SERVER_PRESETS: dict[str, ServerPreset] = {
    "course": ServerPreset(
        "servidor llama.cpp del curso",
        "http://127.0.0.1:8080/v1",
        "smollm2-135m-instruct",
        "`scripts/llm_server start` en una terminal, o `llm_server.ensure_running()` en el cuaderno "
        "(puerto: COURSE_LLM_PORT, 8080 por defecto)",
    ),
    "lmstudio": ServerPreset(
        "LM Studio",
        "http://localhost:1234/v1",
        "qwen2.5-1.5b-instruct",
        "carga un modelo y pulsa «Start server» en la pestaña Developer (o `lms server start`)",
    ),
    "ollama": ServerPreset(
        "Ollama",
        "http://localhost:11434/v1",
        "qwen2.5:1.5b",
        "`ollama pull qwen2.5:1.5b` y `ollama serve`",
    ),
}


def use_server(name: str, model: str | None = None) -> Endpoint:
    """Point the helpers at a preset server by setting ``LLM_BASE_URL``/``LLM_MODEL``.

    ``use_server("course")`` clears both variables (back to the course's own server).
    Returns the endpoint the next :func:`connect` will use.

    Raises:
        KeyError: for an unknown preset, listing the known ones.
    """
    global _default
    if name not in SERVER_PRESETS:
        raise KeyError(f"Servidor desconocido {name!r}; usa uno de estos: {', '.join(SERVER_PRESETS)}.")
    if name == "course":
        os.environ.pop("LLM_BASE_URL", None)
        os.environ.pop("LLM_MODEL", None)
    else:
        preset = SERVER_PRESETS[name]
        os.environ["LLM_BASE_URL"] = preset.base_url
        os.environ["LLM_MODEL"] = model or preset.example_model
    _default = None
    return resolve_endpoint()


def how_to_start_a_server() -> str:
    """Spanish instructions for starting any of the preset servers (for error messages)."""
    lines = []
    for key, preset in SERVER_PRESETS.items():
        env = "" if key == "course" else f"; luego LLM_BASE_URL={preset.base_url} LLM_MODEL=<modelo>"
        lines.append(f"  • {preset.label}: {preset.how_to_start}{env}")
    return "\n".join(lines)


def llm_service(endpoint: Endpoint | None = None) -> list[Service]:
    """Pre-flight :class:`~utils.core.preflight.Service` for a local endpoint (none for remote APIs).

    Remote APIs (OpenAI…) answer ``/models`` only with a key, so they are not probed; the
    first call reports a clear error instead.
    """
    from urllib.parse import urlparse

    from utils.core.preflight import Service

    endpoint = endpoint or resolve_endpoint()
    if urlparse(endpoint.base_url).hostname not in ("127.0.0.1", "localhost", "0.0.0.0", "::1"):
        return []
    return [Service("servidor LLM", f"{endpoint.base_url}/models", "arranca uno:\n" + how_to_start_a_server())]


# --------------------------------------------------------------------------- errors


class LLMError(CourseError):
    """A call to the LLM server failed; the message says what to do."""


class LLMUnavailableError(LLMError):
    """No server answers at the endpoint; the message says how to start one."""

    def __init__(self, base_url: str, reason: str):
        self.base_url = mask_credentials(base_url)
        super().__init__(
            f"Ningún servidor LLM responde en {base_url} ({reason}).\n"
            f"Arranca uno y vuelve a ejecutar la celda:\n{how_to_start_a_server()}"
        )


class LLMTimeoutError(LLMError):
    """The server did not answer within the timeout (after the retries)."""


class LLMRequestError(LLMError):
    """The server refused the request (HTTP 4xx); ``status_code`` says which."""

    def __init__(self, message: str, status_code: int | None = None):
        self.status_code = status_code
        super().__init__(message)


class LLMContextError(LLMRequestError):
    """The prompt plus ``max_tokens`` do not fit in the model's context window."""


#: How servers word a context overflow: llama-cpp-python and OpenAI ("maximum context
#: length is N tokens"), llama.cpp ("exceed context window of N"), vLLM, LM Studio.
_CONTEXT_OVERFLOW = re.compile(
    r"context[ _](length|window)|maximum context|exceeds? (the )?(available )?context|too many tokens", re.IGNORECASE
)
_LIMIT = re.compile(r"(?:context length is|context window of|context size of)\D{0,3}(\d+)", re.IGNORECASE)
_REQUESTED = re.compile(r"(?:requested|Requested tokens \()\D{0,3}(\d+)", re.IGNORECASE)


def _context_error(message: str, max_tokens: int | None) -> LLMContextError:
    limit, requested = _LIMIT.search(message), _REQUESTED.search(message)
    detail = f" ({requested.group(1)} tokens pedidos; el límite es {limit.group(1)})" if limit and requested else ""
    return LLMContextError(
        "La conversación no cabe en la ventana de contexto del modelo" + detail + ": el prompt "
        f"(sistema + historial + mensaje) más la respuesta pedida (max_tokens={max_tokens}) superan "
        "el límite (n_ctx). Qué hacer: acorta el historial (trim_history con un max_history_tokens "
        "más bajo), acorta el prompt o los ejemplos, o baja max_tokens. O usa una "
        "ventana mayor: `scripts/llm_server stop`, exporta "
        "COURSE_SETTINGS_OVERRIDES='{\"llm.n_ctx\": 4096}' antes de abrir el cuaderno y vuelve "
        "a ejecutar la celda que arranca el servidor.",
        status_code=400,
    )


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True)
class Completion:
    """One answer of the model, with what it cost."""

    text: str
    model: str
    latency_s: float  # wall time of the successful request (prompt processing + generation)
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    attempts: int = 1  # requests made (more than 1 after transient failures)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of wall time (includes reading the prompt)."""
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0

    @property
    def truncated(self) -> bool:
        """True when the answer stopped at ``max_tokens`` instead of ending by itself."""
        return self.finish_reason == "length"

    def stats_line(self) -> str:
        """``⏱ 0.84 s · 42 → 7 tokens · 8 tok/s`` (and a note when cut by max_tokens)."""
        line = (
            f"⏱ {self.latency_s:.2f} s · {self.prompt_tokens} → {self.completion_tokens} tokens"
            f" · {self.tokens_per_s:.0f} tok/s"
        )
        return line + (" · cortada por max_tokens" if self.truncated else "")

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class UsageSummary:
    """Latency and throughput over many calls."""

    calls: int
    median_latency_s: float
    p90_latency_s: float
    prompt_tokens: int
    completion_tokens: int
    tokens_per_s: float  # all generated tokens / all request time

    def as_dict(self, prefix: str = "llm_") -> dict[str, float]:
        return {f"{prefix}{k}": v for k, v in asdict(self).items()}


def summarize(completions: list[Completion]) -> UsageSummary:
    """Median/p90 latency, token totals and overall tokens/s of ``completions``."""
    if not completions:
        return UsageSummary(0, 0.0, 0.0, 0, 0, 0.0)
    latencies = sorted(c.latency_s for c in completions)
    p90 = latencies[min(len(latencies) - 1, round(0.9 * (len(latencies) - 1)))]
    total_time = sum(latencies)
    generated = sum(c.completion_tokens for c in completions)
    return UsageSummary(
        calls=len(completions),
        median_latency_s=round(statistics.median(latencies), 3),
        p90_latency_s=round(p90, 3),
        prompt_tokens=sum(c.prompt_tokens for c in completions),
        completion_tokens=generated,
        tokens_per_s=round(generated / total_time, 1) if total_time > 0 else 0.0,
    )


#: Transient failures (connection refused, timeouts, 5xx) are retried this many times in all.
DEFAULT_RETRY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=4.0)


@dataclass
class LLMClient:
    """The ``openai`` client for one endpoint, with timeout, bounded retries and a call log.

    ``calls`` keeps every :class:`Completion`, so a notebook can show latency and tokens/s
    over everything it asked (:meth:`usage`).
    """

    endpoint: Endpoint
    timeout_s: float = 60.0
    max_tokens: int = 256
    temperature: float = 0.0
    retry: RetryPolicy = DEFAULT_RETRY
    calls: list[Completion] = field(default_factory=list)
    #: The ``response_format`` form for JSON schemas this server accepted ("llama-cpp" or
    #: "openai"), learnt on first use by :mod:`utils.prompting.structured_output`.
    schema_style: str | None = None

    def __post_init__(self) -> None:
        self._client = None

    @property
    def openai(self):
        """The underlying ``openai.OpenAI`` (its own retries off: :attr:`retry` decides)."""
        if self._client is None:
            self._client = make_client(self.endpoint, timeout=self.timeout_s, max_retries=0)
        return self._client

    def chat(
        self,
        messages: Sequence[Mapping[str, str]],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **extra: Any,
    ) -> Completion:
        """One chat completion (``extra`` goes to ``chat.completions.create``: seed, stop,
        response_format…)."""
        limit = max_tokens or self.max_tokens
        response, latency, attempts = self._request(
            lambda: self.openai.chat.completions.create(
                model=self.endpoint.model,
                messages=[dict(m) for m in messages],
                temperature=self.temperature if temperature is None else temperature,
                max_tokens=limit,
                **extra,
            ),
            limit,
        )
        choice = response.choices[0]
        return self._log(response, choice.message.content or "", choice.finish_reason, latency, attempts)

    def complete_text(
        self, prompt: str, *, temperature: float | None = None, max_tokens: int | None = None, **extra: Any
    ) -> Completion:
        """A raw text completion (``/v1/completions``): no chat template, the model just
        continues ``prompt`` — how a *base* model is used."""
        limit = max_tokens or self.max_tokens
        response, latency, attempts = self._request(
            lambda: self.openai.completions.create(
                model=self.endpoint.model,
                prompt=prompt,
                temperature=self.temperature if temperature is None else temperature,
                max_tokens=limit,
                **extra,
            ),
            limit,
        )
        choice = response.choices[0]
        return self._log(response, choice.text or "", choice.finish_reason, latency, attempts)

    def usage(self) -> UsageSummary:
        """Latency and tokens/s over every call made with this client."""
        return summarize(self.calls)

    def _request(self, send: Callable[[], Any], max_tokens: int | None = None) -> tuple[Any, float, int]:
        import openai

        attempts = 0
        started = 0.0

        def attempt() -> Any:
            nonlocal attempts, started
            attempts += 1
            started = time.perf_counter()
            return send()

        base_url = self.endpoint.base_url
        try:
            response = retry_call(attempt, self.retry)
        except openai.APITimeoutError:
            raise LLMTimeoutError(
                f"El servidor {base_url} no respondió en {self.timeout_s:.0f} s "
                f"({attempts} intento(s)). Con modelos grandes en CPU es normal: sube el "
                "tiempo de espera (timeout_s) o baja max_tokens."
            ) from None
        except openai.APIConnectionError as exc:
            raise LLMUnavailableError(base_url, f"{exc.__class__.__name__} tras {attempts} intento(s)") from None
        except openai.NotFoundError as exc:
            raise LLMRequestError(
                f"El servidor {base_url} respondió 404 (dice: «{exc.message}»). Comprueba que "
                f"LLM_BASE_URL termina en /v1 y que el modelo {self.endpoint.model!r} es uno de "
                "los que sirve (LLM_MODEL).",
                404,
            ) from None
        except openai.AuthenticationError:
            raise LLMRequestError(
                f"El servidor {base_url} rechazó la clave (401). Comprueba LLM_API_KEY (variable de "
                "entorno o secreto de Colab); los servidores locales aceptan cualquiera.",
                401,
            ) from None
        except openai.APIStatusError as exc:
            message = str(getattr(exc, "message", "") or exc)
            if exc.status_code in (400, 413, 422) and _CONTEXT_OVERFLOW.search(message):
                raise _context_error(message, max_tokens) from None
            raise LLMRequestError(
                f"El servidor {base_url} rechazó la petición (HTTP {exc.status_code}; dice: «{message[:300]}»). "
                "Revisa los parámetros de la llamada (max_tokens, temperature, response_format…) y "
                "el modelo (LLM_MODEL).",
                exc.status_code,
            ) from None
        return response, time.perf_counter() - started, attempts

    def _log(self, response: Any, text: str, finish: str | None, latency: float, attempts: int) -> Completion:
        usage = getattr(response, "usage", None)
        completion = Completion(
            text=text,
            model=getattr(response, "model", None) or self.endpoint.model,
            latency_s=round(latency, 3),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=finish,
            attempts=attempts,
        )
        self.calls.append(completion)
        return completion


_default: LLMClient | None = None


def connect(
    endpoint: Endpoint | None = None,
    *,
    timeout_s: float = 60.0,
    max_tokens: int = 256,
    temperature: float = 0.0,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> LLMClient:
    """Create the client that :func:`get_completion` and :func:`chat` use from now on.

    No request is made (except listing models when ``LLM_BASE_URL`` is set without
    ``LLM_MODEL``).
    """
    global _default
    _default = LLMClient(
        endpoint or resolve_endpoint(),
        timeout_s=timeout_s,
        max_tokens=max_tokens,
        temperature=temperature,
        retry=retry,
    )
    return _default


def default_client() -> LLMClient:
    """The client made by the last :func:`connect` (one with defaults if none yet)."""
    return _default or connect()


def chat(messages: Sequence[Mapping[str, str]], *, client: LLMClient | None = None, **options: Any) -> Completion:
    """Send a conversation (``[{"role": "system"|"user"|"assistant", "content": ...}]``).

    ``options``: ``temperature`` and ``max_tokens`` (default: the client's), and anything
    ``chat.completions.create`` accepts (``response_format``, ``seed``, ``stop``…).

    Raises:
        LLMUnavailableError: no server answers (the message says how to start one).
        LLMTimeoutError: no answer within the client's timeout, after the retries.
        LLMContextError: the conversation does not fit in the model's context window.
        LLMRequestError: the server refused the request (HTTP 4xx).
    """
    return (client or default_client()).chat(messages, **options)


def get_completion(
    prompt: str, system: str | None = None, *, client: LLMClient | None = None, **options: Any
) -> Completion:
    """Ask one question: an optional system message plus one user message.

    Same options and errors as :func:`chat` (``temperature`` 0 by default: repeatable answers).
    """
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return chat(messages, client=client, **options)


def plot_latency(completions: Sequence[Completion], title: str = "Latencia de cada llamada"):
    """Scatter of latency against generated tokens: the slope is the generation speed, the
    spread at equal length is the cost of reading longer prompts (and of a busy machine)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    points = ax.scatter(
        [c.completion_tokens for c in completions],
        [c.latency_s for c in completions],
        c=[c.prompt_tokens for c in completions],
        cmap="viridis",
        s=18,
    )
    fig.colorbar(points, ax=ax, label="tokens del prompt")
    ax.set_xlabel("tokens generados")
    ax.set_ylabel("segundos")
    ax.set_title(title)
    fig.tight_layout()
    return fig
