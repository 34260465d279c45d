"""Structured output: JSON answers validated with pydantic, a repair loop, constrained decoding.

Three ways to get JSON out of a model, from weakest to strongest:

1. **Prompt only** — ask for JSON in the prompt and validate what comes back with a pydantic
   model (:func:`validate_json`).  Small models often answer with prose, broken JSON or the
   wrong keys; validation catches it.
2. **Repair loop** — :func:`ask_json` sends the validation error back to the model and asks
   again, a bounded number of times.
3. **JSON-schema-constrained output** — the server only lets the model emit tokens that
   keep the answer valid against the schema (llama.cpp turns the schema into a grammar; LM
   Studio, Ollama, vLLM and OpenAI accept ``response_format`` with a JSON schema).  The
   syntax is then always right; the *content* can still be wrong, which is why the pydantic
   validation (and your own checks in Python) stay.

.. code-block:: python

    class Review(BaseModel):
        product: str
        sentiment: Literal["positivo", "negativo", "neutro"]

    result = ask_json(messages, Review, constrained=True, repairs=2)
    result.value, result.outcome          # Review(...) or None, "a la primera" / ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from utils.services.llm_client import (
    Completion,
    Endpoint,
    LLMClient,
    LLMContextError,
    LLMError,
    LLMRequestError,
    chat,
    default_client,
)

M = TypeVar("M", bound=BaseModel)

#: What the repair loop tells the model after an invalid answer ({error}, {schema}).
REPAIR_PROMPT = (
    "Tu respuesta anterior no es válida: {error}\n"
    "Responde de nuevo SOLO con el JSON corregido, sin texto antes ni después: {schema}."
)


# --------------------------------------------------------------------------- parsing


class _NotJson(ValueError):
    """A number JSON does not allow (NaN, Infinity) or one too large for a float (1e999)."""


def _reject_constant(name: str) -> float:
    raise _NotJson(f"{name} no es un número JSON válido")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isnan(value) or value in (float("inf"), float("-inf")):
        raise _NotJson(f"el número {text[:20]} no cabe en un float (sale infinito)")
    return value


def _decoder() -> json.JSONDecoder:
    """Lenient with raw newlines in strings (strict=False), strict with non-finite numbers."""
    return json.JSONDecoder(strict=False, parse_constant=_reject_constant, parse_float=_finite_float)


def extract_json(text: str) -> str | None:
    """The first JSON object in ``text``, ignoring code fences and chatter around it.

    Returns the first ``{...}`` that parses; if none parses, the span from the first ``{``
    to the last ``}`` (so that validation can say what is broken); ``None`` when the text
    has no ``{`` at all.
    """
    decoder = _decoder()
    start = text.find("{")
    first = start
    while start != -1:
        try:
            obj, end = decoder.raw_decode(text, start)
        except RecursionError:  # nested too deeply: so is everything inside it; stop here
            last = text.rfind("}")
            return text[start : last + 1] if last > start else text[start:]
        except ValueError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            return text[start:end]
        start = text.find("{", start + 1)
    if first == -1:
        return None
    last = text.rfind("}")
    return text[first : last + 1] if last > first else text[first:]


#: pydantic's messages, in Spanish (``{...}`` filled from the error's ``ctx``).
_PYDANTIC_ES = {
    "missing": "falta este campo",
    "extra_forbidden": "este campo no está permitido",
    "string_type": "debe ser un texto",
    "int_type": "debe ser un número entero",
    "int_parsing": "debe ser un número entero",
    "int_from_float": "debe ser un número entero, sin decimales",
    "float_type": "debe ser un número",
    "float_parsing": "debe ser un número",
    "finite_number": "debe ser un número finito (ni NaN ni infinito)",
    "bool_type": "debe ser true o false",
    "bool_parsing": "debe ser true o false",
    "list_type": "debe ser una lista",
    "dict_type": "debe ser un objeto",
    "model_type": "debe ser un objeto",
    "model_attributes_type": "debe ser un objeto",
    "literal_error": "debe ser uno de: {expected}",
    "enum": "debe ser uno de: {expected}",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual que {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual que {le}",
    "string_too_short": "debe tener al menos {min_length} caracteres",
    "string_too_long": "debe tener como mucho {max_length} caracteres",
    "too_short": "debe tener al menos {min_length} elementos",
    "too_long": "debe tener como mucho {max_length} elementos",
    "none_required": "debe ser null",
    "json_invalid": "JSON mal formado ({error})",
    "json_type": "debe ser un texto JSON",
}


def _spanish_message(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind in ("value_error", "assertion_error"):  # the model's own validator: its message as written
        error = (err.get("ctx") or {}).get("error")
        return str(error) if error is not None else str(err["msg"])
    template = _PYDANTIC_ES.get(kind)
    if template is None:
        return f"valor no válido ({kind})"
    try:
        return template.format(**(err.get("ctx") or {})).replace(" or ", " o ")
    except (KeyError, IndexError):
        return template.split(":")[0]


def describe_errors(exc: ValidationError, limit: int = 4) -> str:
    """A short, one-line summary of a pydantic error in Spanish (for people and for the model)."""
    parts = []
    errors = exc.errors(include_url=False)
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "objeto"
        got = err.get("input")
        shown = json.dumps(got, ensure_ascii=False)[:60] if got is not None and err["type"] != "missing" else ""
        parts.append(f"{where}: {_spanish_message(err)}" + (f" (recibido: {shown})" if shown else ""))
    if len(errors) > limit:
        parts.append(f"y {len(errors) - limit} error(es) más")
    return "; ".join(parts)


#: The ``json`` module's messages, in Spanish.
_JSON_ERRORS_ES = {
    "Expecting value": "falta un valor",
    "Expecting property name enclosed in double quotes": "se esperaba una clave entre comillas dobles",
    "Expecting ',' delimiter": "falta una coma",
    "Expecting ':' delimiter": "faltan los dos puntos tras la clave",
    "Unterminated string starting at": "una cadena de texto no se cierra",
    "Invalid control character at": "carácter de control no válido",
    "Extra data": "sobra texto después del objeto",
    "Invalid \\escape": "secuencia de escape no válida",
    "Invalid \\uXXXX escape": "escape \\uXXXX no válido",
}


def validate_json(text: str, model: type[M], context: Mapping[str, Any] | None = None) -> tuple[M | None, str | None]:
    """Parse ``text`` into ``model``: ``(value, None)`` if valid, ``(None, error)`` if not.

    ``context`` reaches the model's validators (``info.context``), e.g. the source text
    an extracted field must come from.  Never raises for bad input: JSON nested too deeply
    for Python, ``NaN``, ``Infinity`` and numbers like ``1e999`` are validation failures.
    """
    candidate = extract_json(text)
    if candidate is None:
        return None, "la respuesta no contiene ningún objeto JSON"
    try:
        data = _decoder().decode(candidate)  # a raw newline inside a string is fine
    except _NotJson as exc:
        return None, f"JSON no válido ({exc})"
    except json.JSONDecodeError as exc:
        return (
            None,
            f"JSON mal formado ({_JSON_ERRORS_ES.get(exc.msg, exc.msg)}; línea {exc.lineno}, columna {exc.colno})",
        )
    except ValueError:  # an integer with thousands of digits
        return None, "JSON mal formado (un número tiene demasiadas cifras)"
    except RecursionError:
        return None, "JSON anidado a demasiada profundidad: usa un objeto plano con las claves pedidas"
    try:
        return model.model_validate(data, context=dict(context) if context else None), None
    except ValidationError as exc:
        return None, describe_errors(exc)
    except RecursionError:
        return None, "JSON anidado a demasiada profundidad: usa un objeto plano con las claves pedidas"


_TYPE_NAMES = {"string": "texto", "integer": "entero", "number": "número", "boolean": "true o false", "null": "null"}


def describe_schema(model: type[BaseModel]) -> str:
    """The JSON ``model`` expects, described in words for a prompt.

    ``un objeto JSON con las claves "product" (texto), "sentiment" (uno de "positivo",
    "negativo", "neutro") y "price" (número o null)``.  Words rather than a JSON template:
    small models copy a template's placeholders (``"<string>"``) into their answer.
    """
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})

    def keys(node: Mapping[str, Any]) -> str:
        parts = [f'"{name}" ({kind(sub)})' for name, sub in node.get("properties", {}).items()]
        return ", ".join(parts[:-1]) + f" y {parts[-1]}" if len(parts) > 1 else "".join(parts)

    def kind(node: Mapping[str, Any]) -> str:
        if "$ref" in node:
            return kind(defs[node["$ref"].rsplit("/", 1)[-1]])
        if "enum" in node:
            return "uno de " + ", ".join(json.dumps(v, ensure_ascii=False) for v in node["enum"])
        if "anyOf" in node:
            return " o ".join(kind(n) for n in node["anyOf"])
        if node.get("type") == "object":
            return f"objeto con las claves {keys(node)}"
        if node.get("type") == "array":
            return f"lista; cada elemento: {kind(node.get('items', {}))}"
        return _TYPE_NAMES.get(str(node.get("type")), "valor")

    return f"un objeto JSON con las claves {keys(schema)}"


SchemaStyle = Literal["llama-cpp", "openai"]


def schema_response_format(
    model: type[BaseModel], endpoint: Endpoint | None = None, style: SchemaStyle | None = None
) -> dict[str, Any]:
    """The ``response_format`` that constrains the answer to ``model``'s JSON schema.

    Enseñado en el cuaderno 05, sección 3 (táctica 2), where the dictionary is written by hand.
    llama-cpp-python's server (the course's) takes ``{"type": "json_object", "schema": …}``
    (``style="llama-cpp"``); LM Studio, Ollama, vLLM and OpenAI take the OpenAI form
    ``{"type": "json_schema", …}`` (``style="openai"``).  By default the style follows the
    endpoint: llama-cpp for the course's server, openai for any other.
    """
    schema = model.model_json_schema()
    if style is None:
        endpoint = endpoint or default_client().endpoint
        style = "llama-cpp" if endpoint.is_course_server else "openai"
    if style == "llama-cpp":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": schema}}


def _constrained_chat(
    history: list[dict[str, str]], model: type[BaseModel], client: LLMClient, options: dict
) -> Completion:
    """``chat`` with the schema in ``response_format``; if the server rejects that form
    (an HTTP error), try the other one once and remember which one works."""
    import openai

    preferred = client.schema_style or ("llama-cpp" if client.endpoint.is_course_server else "openai")
    styles: list[SchemaStyle] = [preferred, "openai" if preferred == "llama-cpp" else "llama-cpp"]
    for i, style in enumerate(styles):
        try:
            completion = chat(
                history, client=client, response_format=schema_response_format(model, style=style), **options
            )
        except LLMContextError:
            raise  # too long for the model: another schema form does not help
        except (openai.APIStatusError, LLMRequestError) as exc:  # 400/422, or 500 from llama-cpp-python's validation
            if i + 1 < len(styles):
                continue
            raise LLMError(
                f"El servidor {client.endpoint.base_url} no acepta salida restringida por esquema JSON "
                f"(response_format; respondió {exc.status_code}). Usa constrained=False: la validación "
                "con pydantic y el bucle de reparación siguen funcionando."
            ) from None
        client.schema_style = style
        return completion
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- asking


@dataclass(frozen=True)
class JsonAttempt:
    """One answer of the model and, if it was invalid, why."""

    completion: Completion
    error: str | None  # None when the answer validated


@dataclass(frozen=True)
class JsonResult(Generic[M]):
    """The outcome of :func:`ask_json`: the value (or None) and every attempt."""

    value: M | None
    attempts: tuple[JsonAttempt, ...]
    constrained: bool

    @property
    def ok(self) -> bool:
        return self.value is not None

    @property
    def valid_first_try(self) -> bool:
        return self.ok and len(self.attempts) == 1

    @property
    def repaired(self) -> bool:
        return self.ok and len(self.attempts) > 1

    @property
    def outcome(self) -> str:
        """``"a la primera"``, ``"tras reparar"`` or ``"inválido"``."""
        if self.valid_first_try:
            return "a la primera"
        return "tras reparar" if self.repaired else "inválido"

    def describe(self, width: int = 90) -> str:
        """One line per attempt: ✔/✘, the (shortened) answer and the error."""
        lines = []
        for i, attempt in enumerate(self.attempts, 1):
            answer = " ".join(attempt.completion.text.split())
            answer = answer if len(answer) <= width else answer[: width - 1] + "…"
            mark = "✔" if attempt.error is None else "✘"
            lines.append(f"  intento {i} {mark} {answer}")
            if attempt.error:
                lines.append(f"      → {attempt.error}")
        return "\n".join(lines)


def ask_json(
    messages: Sequence[Mapping[str, str]] | str,
    model: type[M],
    *,
    constrained: bool = False,
    repairs: int = 2,
    context: Mapping[str, Any] | None = None,
    client: LLMClient | None = None,
    repair_prompt: str = REPAIR_PROMPT,
    **options: Any,
) -> JsonResult[M]:
    """Ask for JSON matching ``model``; on an invalid answer, say why and ask again.

    Args:
        messages: the conversation (or one user prompt).
        model: the pydantic model the answer must validate against.
        constrained: also send ``response_format`` with the model's JSON schema, so the
            server constrains decoding (see :func:`schema_response_format`; if the server
            rejects one form, the other is tried once).
        repairs: how many times to send the error back and ask again (0 = no repair).
        context: passed to the model's validators.
        client: the :class:`~utils.services.llm_client.LLMClient` (default: the current one).
        repair_prompt: template of the repair message (``{error}``, ``{schema}``).
        options: for :func:`utils.services.llm_client.chat` (``max_tokens``, ``temperature``…).

    Returns:
        A :class:`JsonResult`; ``value`` is None if every attempt was invalid.

    Raises:
        LLMError: ``constrained=True`` and the server accepts neither schema form (and
            the errors of :func:`utils.services.llm_client.chat`).
    """
    client = client or default_client()
    history = [{"role": "user", "content": messages}] if isinstance(messages, str) else [dict(m) for m in messages]
    attempts: list[JsonAttempt] = []
    for _ in range(repairs + 1):
        if constrained:
            completion = _constrained_chat(history, model, client, options)
        else:
            completion = chat(history, client=client, **options)
        value, error = validate_json(completion.text, model, context)
        attempts.append(JsonAttempt(completion, error))
        if value is not None:
            return JsonResult(value, tuple(attempts), constrained)
        history += [
            {"role": "assistant", "content": completion.text},
            {"role": "user", "content": repair_prompt.format(error=error, schema=describe_schema(model))},
        ]
    return JsonResult(None, tuple(attempts), constrained)


# --------------------------------------------------------------------------- counting


@dataclass
class JsonTally:
    """How many answers were valid at the first try, after repair, or never."""

    first_try: int = 0
    after_repair: int = 0
    failed: int = 0
    results: list[JsonResult] = field(default_factory=list, repr=False)

    def add(self, result: JsonResult) -> JsonResult:
        """Count ``result`` and return it."""
        self.results.append(result)
        if result.valid_first_try:
            self.first_try += 1
        elif result.repaired:
            self.after_repair += 1
        else:
            self.failed += 1
        return result

    @property
    def total(self) -> int:
        return self.first_try + self.after_repair + self.failed

    def as_dict(self, prefix: str = "") -> dict[str, int]:
        return {
            f"{prefix}valid_first_try": self.first_try,
            f"{prefix}valid_after_repair": self.after_repair,
            f"{prefix}invalid": self.failed,
            f"{prefix}total": self.total,
        }

    def __str__(self) -> str:
        n = self.total
        return (
            f"válidas a la primera {self.first_try}/{n} · tras reparar {self.after_repair}/{n} "
            f"· inválidas {self.failed}/{n}"
        )


def plot_tallies(tallies: Mapping[str, JsonTally], title: str = "Respuestas JSON válidas"):
    """Stacked horizontal bars: valid at first try / after repair / invalid, per strategy."""
    import matplotlib.pyplot as plt

    names = list(tallies)
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.2))
    left = [0] * len(names)
    for attr, label, color in (
        ("first_try", "a la primera", "#2e7d32"),
        ("after_repair", "tras reparar", "#f9a825"),
        ("failed", "inválidas", "#c62828"),
    ):
        values = [getattr(tallies[n], attr) for n in names]
        ax.barh(names, values, left=left, label=label, color=color)
        left = [a + b for a, b in zip(left, values)]
    ax.invert_yaxis()
    ax.set_xlabel("respuestas")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
