"""Notebook 05's helpers without a server: JSON parsing and validation, schema formats,
history trimming, the menu and the order check (with the notebook's own ``Order`` model),
the full profile.  The exercise checks are in ``test_exercises_05.py``."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from utils.core.paths import data_dir
from utils.core.settings import get_settings
from utils.prompting.chatbot import (
    HistoryBudgetError,
    Menu,
    check_order,
    estimate_tokens,
    history_tokens,
    trim_history,
)
from utils.prompting.structured_output import (
    JsonAttempt,
    JsonResult,
    JsonTally,
    describe_schema,
    extract_json,
    schema_response_format,
    validate_json,
)
from utils.services import llm_client
from utils.services.llm_client import Completion, Endpoint, summarize, use_server


class Review(BaseModel):
    product: str
    sentiment: Literal["positivo", "negativo", "neutro"]
    price: float | None = None

    @field_validator("product")
    @classmethod
    def in_review(cls, value: str, info: ValidationInfo) -> str:
        review = (info.context or {}).get("review", "")
        if review and value.lower() not in review.lower():
            raise ValueError(f"{value!r} is not in the review")
        return value


# --------------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', '{"a": 1}'),
        ('Sure! Here it is:\n```json\n{"a": {"b": [1, 2]}}\n```\nAnything else?', '{"a": {"b": [1, 2]}}'),
        ('{broken} then {"ok": true}', '{"ok": true}'),
        ('{"text": "line one\nline two"}', '{"text": "line one\nline two"}'),  # raw newline inside a string
        ('JSON: {"a": 1, "b": ', '{"a": 1, "b": '),  # nothing parses: the span, for the error message
        ("no json here", None),
    ],
)
def test_extract_json(text, expected):
    assert extract_json(text) == expected


def test_validate_json_reports_what_is_wrong():
    value, error = validate_json('```json\n{"product": "Moka", "sentiment": "negativo"}\n```', Review)
    assert error is None and value.product == "Moka" and value.price is None
    value, error = validate_json('{"product": {"name": "Moka"}, "sentiment": "bad"}', Review)
    assert value is None and "product" in error and "sentiment" in error and "positivo" in error
    assert validate_json('{"product": "Moka", ', Review)[1].startswith("JSON mal formado")
    assert validate_json("Claro, aquí tienes", Review)[1] == "la respuesta no contiene ningún objeto JSON"
    review = "La cafetera Moka llegó rota."
    assert validate_json('{"product": "tetera Brisa", "sentiment": "negativo"}', Review, {"review": review})[0] is None
    assert validate_json('{"product": "cafetera Moka", "sentiment": "negativo"}', Review, {"review": review})[0]


def test_deeply_nested_json_is_a_validation_failure_not_a_crash():
    """RecursionError used to escape validate_json (and extract_json) on deeply nested input."""
    for text in ('{"product": ' + "[" * 100_000 + "]" * 100_000 + "}",
                 '{"a": ' * 50_000 + "1" + "}" * 50_000,
                 "Aquí está: " + '{"a": ' * 50_000):  # fmt: skip
        value, error = validate_json(text, Review)
        assert value is None and ("demasiada profundidad" in error or error.startswith("JSON mal formado")), error
    assert extract_json('{"a": ' * 50_000 + "1" + "}" * 50_000).startswith('{"a": {"a": ')


def _notebook_cell(marker: str, **names) -> dict:
    """Run the notebook 05 code cell containing ``marker`` (its statements, not its prints)
    with ``names`` defined; return its namespace."""
    notebook = json.loads(
        (data_dir().parent / "notebooks" / "05_prompting_llm_local.ipynb").read_text(encoding="utf-8")
    )
    source = next("".join(c["source"]) for c in notebook["cells"]
                  if c["cell_type"] == "code" and marker in "".join(c["source"]))  # fmt: skip
    tree = ast.parse(source)
    tree.body = [node for node in tree.body if not isinstance(node, ast.Expr)]
    namespace: dict = {"__name__": "notebook_05", "Literal": Literal, "BaseModel": BaseModel, "Field": Field}
    namespace.update(ValidationInfo=ValidationInfo, field_validator=field_validator, **names)
    exec(compile(tree, "05_prompting_llm_local.ipynb", "exec", dont_inherit=True), namespace)  # noqa: S102
    return namespace


def _notebook_review() -> type[BaseModel]:
    """The ``Review`` model exactly as notebook 05 defines it (its cell, executed)."""
    return _notebook_cell("class Review(BaseModel)")["Review"]


def order_model(menu: Menu) -> type[BaseModel]:
    """The ``Order`` model exactly as notebook 05 writes it (section 8) for ``menu``."""
    return _notebook_cell("class Order(BaseModel)", menu=menu)["Order"]


@pytest.mark.parametrize("price", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "-5", "-0.01", '"NaN"', '"inf"'])
def test_notebook_05_schema_refuses_impossible_prices(price):
    review = _notebook_review()
    value, error = validate_json(f'{{"product": "Moka", "sentiment": "negativo", "price": {price}}}', review)
    assert value is None and error, price
    for bad in (float("nan"), float("inf"), -1.0):  # also when validated from Python, not from JSON text
        with pytest.raises(ValueError):
            review.model_validate({"product": "Moka", "sentiment": "negativo", "price": bad})
    ok, _ = validate_json('{"product": "Moka", "sentiment": "negativo", "price": 0}', review)
    assert ok is not None and ok.price == 0.0
    assert validate_json('{"product": "Moka", "sentiment": "negativo", "price": 19.9}', review)[0].price == 19.9


def test_order_total_and_menu_prices_must_be_finite_and_not_negative(tmp_path):
    menu = Menu.load(data_dir() / "tienda_menu.json")
    Order = order_model(menu)
    for total in ("NaN", "Infinity", "1e999", "-3"):
        assert validate_json(f'{{"items": [{{"product": "té", "quantity": 1}}], "total": {total}}}', Order)[0] is None
    path = tmp_path / "menu.json"
    for price in ("NaN", "-1.5", "Infinity"):
        path.write_text(f'{{"shop": "x", "items": [{{"name": "té", "price": {price}}}]}}', encoding="utf-8")
        with pytest.raises(ValueError, match="precio de té no es válido"):
            Menu.load(path)


def test_describe_schema_in_words():
    text = describe_schema(Review)
    assert text == (
        'un objeto JSON con las claves "product" (texto), "sentiment" (uno de "positivo", '
        '"negativo", "neutro") y "price" (número o null)'
    )
    menu = Menu.load(data_dir() / "tienda_menu.json")
    nested = describe_schema(order_model(menu))
    assert '"items" (lista; cada elemento: objeto con las claves "product" (uno de "café solo"' in nested
    assert '"quantity" (entero)' in nested and nested.endswith('y "total" (número)')


def test_schema_response_format_per_server():
    course = Endpoint("http://127.0.0.1:8080/v1", "m", "k", is_course_server=True)
    other = Endpoint("http://localhost:11434/v1", "m", "k", is_course_server=False)
    assert schema_response_format(Review, course) == {"type": "json_object", "schema": Review.model_json_schema()}
    openai_style = schema_response_format(Review, other)
    assert openai_style["type"] == "json_schema" and openai_style["json_schema"]["schema"]["required"] == [
        "product",
        "sentiment",
    ]


def _result(*errors: str | None) -> JsonResult:
    attempts = tuple(JsonAttempt(Completion("x", "m", 1.0, 1, 1, "stop"), e) for e in errors)
    return JsonResult(object() if errors[-1] is None else None, attempts, constrained=False)


def test_tally_counts_outcomes():
    tally = JsonTally()
    for result in (_result(None), _result("bad", None), _result("bad", "bad"), _result(None)):
        tally.add(result)
    assert (tally.first_try, tally.after_repair, tally.failed, tally.total) == (2, 1, 1, 4)
    assert tally.as_dict("json_") == {
        "json_valid_first_try": 2,
        "json_valid_after_repair": 1,
        "json_invalid": 1,
        "json_total": 4,
    }
    assert [r.outcome for r in tally.results] == ["a la primera", "tras reparar", "inválido", "a la primera"]


# --------------------------------------------------------------------------- client


def test_summarize_latency_and_throughput():
    calls = [Completion("a", "m", t, 10, n, "stop") for t, n in ((1.0, 10), (2.0, 30), (4.0, 40), (1.0, 20))]
    usage = summarize(calls)
    assert usage.calls == 4 and usage.median_latency_s == 1.5 and usage.p90_latency_s == 4.0
    assert usage.completion_tokens == 100 and usage.tokens_per_s == round(100 / 8.0, 1)
    assert summarize([]).calls == 0
    assert Completion("a", "m", 2.0, 5, 10, "length").stats_line() == (
        "⏱ 2.00 s · 5 → 10 tokens · 5 tok/s · cortada por max_tokens"
    )


def test_use_server_presets(monkeypatch):
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    monkeypatch.delenv("LLM_MODEL", raising=False)
    endpoint = use_server("ollama", model="qwen2.5:3b")
    assert (endpoint.base_url, endpoint.model, endpoint.is_course_server) == (
        "http://localhost:11434/v1",
        "qwen2.5:3b",
        False,
    )
    assert use_server("lmstudio").model == llm_client.SERVER_PRESETS["lmstudio"].example_model
    assert use_server("course").is_course_server
    with pytest.raises(KeyError, match="ollama"):
        use_server("koboldcpp")
    assert llm_client.llm_service(Endpoint("https://api.openai.com/v1", "m", "k", False)) == []
    assert llm_client.llm_service(endpoint)[0].url == "http://localhost:11434/v1/models"


def test_calls_the_notebook_makes_fit_the_installed_openai():
    """Full profile, statically: every keyword the helpers pass is accepted by openai."""
    from openai.resources.chat.completions import Completions as Chat
    from openai.resources.completions import Completions as Text

    chat_params = inspect.signature(Chat.create).parameters
    for name in ("model", "messages", "temperature", "max_tokens", "response_format", "seed", "stop"):
        assert name in chat_params, name
    text_params = inspect.signature(Text.create).parameters
    for name in ("model", "prompt", "temperature", "max_tokens"):
        assert name in text_params, name


@pytest.mark.parametrize("profile", ["mini", "full"])
def test_prompting_settings_fit_the_context_window(profile):
    settings = get_settings(profile)
    cfg, llm = settings.prompting, settings.llm
    assert cfg.max_history_tokens + cfg.chat_max_tokens <= llm.n_ctx
    assert (data_dir() / cfg.reviews_file).is_file() and (data_dir() / cfg.menu_file).is_file()
    if profile == "full":
        owner_repo_file = llm.gguf.removeprefix("hf:").split("/")
        assert llm.gguf.startswith("hf:") and len(owner_repo_file) == 3 and owner_repo_file[2].endswith(".gguf")


def test_new_modules_import_cheaply():
    code = (
        "import sys, utils.prompting.structured_output, utils.prompting.chatbot, utils.prompting.prompt_exercises; "
        "print([m for m in ('openai', 'torch', 'matplotlib') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


# --------------------------------------------------------------------------- history


def _conversation(turns: int) -> list[dict[str, str]]:
    history = [{"role": "system", "content": "Eres un camarero."}]
    for i in range(turns):
        history += [
            {"role": "user", "content": f"pregunta número {i} " * 3},
            {"role": "assistant", "content": f"respuesta número {i} " * 3},
        ]
    return history


def test_trim_history_keeps_system_and_newest():
    history = _conversation(6) + [{"role": "user", "content": "¿y la cuenta?"}]
    window = trim_history(history, 120)
    assert window[0] == history[0] and window[-1] == history[-1]
    assert window[1:] == history[len(history) - len(window) + 1 :]  # a contiguous, newest tail
    assert window[1]["role"] == "user" and history_tokens(window) <= 120 < history_tokens(history)
    assert trim_history(history, 10_000) == history


def test_trim_history_never_starts_with_the_assistant():
    history = _conversation(3)  # ends with an assistant message
    for budget in range(40, 160, 7):
        window = trim_history(history + [{"role": "user", "content": "hola"}], budget)
        assert window[1]["role"] == "user"


def test_trim_history_budget_too_small_is_actionable():
    with pytest.raises(HistoryBudgetError, match="max_history_tokens"):
        trim_history(_conversation(1), 5)


def test_token_estimate_counts_up():
    assert estimate_tokens("") == 0 and estimate_tokens("a") == 1 and estimate_tokens("x" * 25) == 10


# --------------------------------------------------------------------------- menu and order


def test_menu_and_order_check():
    menu = Menu.load(data_dir() / "tienda_menu.json")
    assert menu.price("cruasán") == 1.80 and "- café con leche: 1.50 €" in menu.as_text()
    Order = order_model(menu)
    order = Order.model_validate(
        {
            "items": [
                {"product": "café con leche", "quantity": 2},
                {"product": "cruasán", "quantity": 1},
                {"product": "café con leche", "quantity": 1},
            ],
            "total": 4.8,
        }
    )
    check = check_order(order, menu)
    assert check.computed_total == 6.30 and not check.total_ok
    assert check.quantities() == {"café con leche": 3, "cruasán": 1}
    assert "6.30" in check.receipt() and "el modelo dijo 4.80" in check.receipt()
    good = check_order(Order.model_validate({"items": [{"product": "té", "quantity": 3}], "total": 3.9}), menu)
    assert good.total_ok
    for bad in (
        {"items": [{"product": "pizza", "quantity": 1}], "total": 1},
        {"items": [{"product": "té", "quantity": 0}], "total": 0},
        {"items": [], "total": 0},
    ):
        with pytest.raises(ValueError):
            Order.model_validate(bad)
    with pytest.raises(KeyError, match="no está en la carta"):
        menu.price("pizza")


def test_bad_menu_file_is_actionable(tmp_path):
    path = tmp_path / "menu.json"
    path.write_text(json.dumps({"shop": "x", "items": [{"name": "té"}]}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"menu\.json.*Se espera"):
        Menu.load(path)
    path.write_text(json.dumps({"shop": "x", "items": [{"name": "té", "price": 1}] * 2}), encoding="utf-8")
    with pytest.raises(ValueError, match="nombre único"):
        Menu.load(path)


# --------------------------------------------------------------------------- server refusals


def test_constrained_output_unsupported_is_actionable():
    """Fault injection: a server that rejects both response_format forms."""
    import httpx
    import openai

    from utils.prompting.structured_output import ask_json
    from utils.services.llm_client import LLMClient, LLMError

    class Rejecting(LLMClient):
        def chat(self, messages, **options):
            self.tried = [*getattr(self, "tried", []), options["response_format"]["type"]]
            request = httpx.Request("POST", f"{self.endpoint.base_url}/chat/completions")
            raise openai.BadRequestError("no", response=httpx.Response(400, request=request), body=None)

    client = Rejecting(Endpoint("http://localhost:1234/v1", "m", "k", is_course_server=False))
    with pytest.raises(LLMError, match="constrained=False"):
        ask_json("hola", Review, constrained=True, client=client)
    assert client.tried == ["json_schema", "json_object"] and client.schema_style is None
