"""A shop chatbot: menu and prices in the system prompt, a history trimmed to a token
budget, and the final order as validated JSON whose total Python checks.

.. code-block:: python

    menu = Menu.load(data_dir() / "tienda_menu.json")
    bot = ShopBot(menu, max_history_tokens=600)
    bot.run(read=input)                 # ends on "salir" or an empty line
    order = bot.take_order()            # JsonResult with the validated order
    check_order(order.value, menu)      # the total, computed by Python

The model only *talks*; prices and totals come from the menu and from Python, because a
language model is not a calculator (and a 135M model is not even a good waiter).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from utils.core.errors import CourseError
from utils.prompting.structured_output import JsonResult, ask_json, describe_schema
from utils.services.llm_client import Completion, LLMClient, chat, default_client

Message = dict[str, str]
TokenCounter = Callable[[str], int]

#: Chat-template tokens around each message (``<|im_start|>role\n … <|im_end|>\n``), rounded up.
MESSAGE_OVERHEAD = 6
#: Tokens that open the assistant's reply (``<|im_start|>assistant\n``), rounded up.
REPLY_OVERHEAD = 4
#: Characters per token assumed when the server cannot count (Spanish ≈ 2.5–4 depending on
#: the tokenizer; a low value overestimates tokens, which is the safe side).
CHARS_PER_TOKEN = 2.5
#: What ends a conversation (besides an empty line).
EXIT_WORDS = frozenset({"salir", "adiós", "adios", "exit", "quit"})


# --------------------------------------------------------------------------- tokens


def estimate_tokens(text: str) -> int:
    """A conservative guess of how many tokens ``text`` takes (no tokenizer needed)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN)) if text else 0


def server_token_counter(client: LLMClient | None = None) -> TokenCounter:
    """Exact token counts from the server's tokenizer when it offers one, else an estimate.

    llama-cpp-python's server (the course's, also in full) answers
    ``POST /extras/tokenize/count``; LM Studio and Ollama do not, and get
    :func:`estimate_tokens`.
    """
    client = client or default_client()
    root = client.endpoint.base_url.removesuffix("/v1")

    @lru_cache(maxsize=4096)
    def count(text: str) -> int:
        request = urllib.request.Request(
            f"{root}/extras/tokenize/count",
            data=json.dumps({"input": text}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(json.load(response)["count"])

    try:
        count("hola")
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return estimate_tokens
    return count


def history_tokens(messages: Sequence[Mapping[str, str]], count: TokenCounter = estimate_tokens) -> int:
    """Tokens a conversation takes in the prompt, template overhead included."""
    return sum(count(m["content"]) + MESSAGE_OVERHEAD for m in messages) + REPLY_OVERHEAD


class MenuError(CourseError, ValueError):
    """A menu file that cannot be used; the message names the file and the fix."""


class HistoryBudgetError(CourseError, ValueError):
    """Not even the system prompt and the last message fit in the token budget."""


def trim_history(
    messages: Sequence[Mapping[str, str]], max_tokens: int, count: TokenCounter = estimate_tokens
) -> list[Message]:
    """Keep the leading system message(s) and the newest messages that fit in ``max_tokens``.

    Older turns are dropped first; the last message (the new question) is always kept, and
    the kept part never starts with an assistant message.

    Raises:
        HistoryBudgetError: when the system prompt plus the last message exceed the budget.
    """
    messages = [dict(m) for m in messages]
    n_system = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    system, rest = messages[:n_system], messages[n_system:]
    used = history_tokens(system, count)
    if not rest:
        return system
    kept: list[Message] = []
    for message in reversed(rest):
        cost = count(message["content"]) + MESSAGE_OVERHEAD
        if used + cost > max_tokens:
            break
        kept.append(message)
        used += cost
    if not kept:
        need = history_tokens([*system, rest[-1]], count)
        raise HistoryBudgetError(
            f"El presupuesto del historial ({max_tokens} tokens) no alcanza ni para el mensaje de "
            f"sistema y la última pregunta ({need} tokens). Súbelo (max_history_tokens en "
            "utils/settings.py) o acorta el mensaje de sistema."
        )
    kept.reverse()
    while len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)
    return system + kept


# --------------------------------------------------------------------------- menu and order


@dataclass(frozen=True)
class MenuItem:
    name: str
    price: float


@dataclass(frozen=True)
class Menu:
    """What the shop sells, at what price."""

    shop: str
    currency: str
    items: tuple[MenuItem, ...]

    @classmethod
    def load(cls, path: Path) -> Menu:
        """Read a menu file: ``{"shop": …, "currency": "€", "items": [{"name", "price"}]}``.

        Raises:
            MenuError: (a ``ValueError``) naming the file and what is wrong in it.
        """
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
            items = tuple(MenuItem(str(i["name"]), float(i["price"])) for i in raw["items"])
            menu = cls(str(raw["shop"]), str(raw.get("currency", "€")), items)
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise MenuError(
                f"El fichero de carta {path} no es válido ({exc.__class__.__name__}: {exc}). Se espera "
                '{"shop": "...", "currency": "€", "items": [{"name": "...", "price": 1.5}, ...]}.'
            ) from None
        if not items or len({i.name for i in items}) != len(items):
            raise MenuError(
                f"Carta {path}: la lista «items» no puede estar vacía y cada producto debe tener un nombre único."
            )
        bad = [i.name for i in items if not (math.isfinite(i.price) and i.price >= 0)]
        if bad:
            raise MenuError(
                f"Carta {path}: el precio de {', '.join(bad)} no es válido; cada precio debe ser un "
                "número finito mayor o igual que 0 (sin NaN ni Infinity)."
            )
        return menu

    @property
    def names(self) -> list[str]:
        return [item.name for item in self.items]

    def price(self, name: str) -> float:
        """Price of ``name`` (exact menu name). Raises KeyError listing the menu."""
        for item in self.items:
            if item.name == name:
                return item.price
        raise KeyError(f"{name!r} no está en la carta ({', '.join(self.names)}).")

    def as_text(self) -> str:
        """One ``- name: 1.50 €`` line per item, for the system prompt."""
        return "\n".join(f"- {item.name}: {item.price:.2f} {self.currency}" for item in self.items)


def order_model(menu: Menu) -> type[BaseModel]:
    """A pydantic model of an order in which ``product`` can only be a menu name.

    Its JSON schema carries the names as an ``enum``, so constrained decoding cannot
    invent products; ``total`` is what the model claims, which :func:`check_order` verifies.
    """
    product = Literal[tuple(menu.names)]  # type: ignore[valid-type]
    line = create_model("OrderLine", product=(product, ...), quantity=(int, Field(ge=1, le=50)))
    return create_model(
        "Order",
        items=(list[line], Field(min_length=1)),  # type: ignore[valid-type]
        total=(float, Field(ge=0, allow_inf_nan=False)),
    )


@dataclass(frozen=True)
class OrderCheck:
    """An order priced by Python from the menu, next to the total the model claimed."""

    lines: tuple[tuple[str, int, float], ...]  # (product, quantity, unit price)
    computed_total: float
    model_total: float

    @property
    def total_ok(self) -> bool:
        return abs(self.computed_total - self.model_total) < 0.005

    def quantities(self) -> dict[str, int]:
        """``{product: quantity}`` (repeated lines added up)."""
        out: dict[str, int] = {}
        for name, quantity, _ in self.lines:
            out[name] = out.get(name, 0) + quantity
        return out

    def receipt(self, currency: str = "€") -> str:
        rows = [f"  {q:>2} × {name:<24} {price:>6.2f} = {q * price:>7.2f} {currency}" for name, q, price in self.lines]
        verdict = "✔ cuadra" if self.total_ok else f"✘ el modelo dijo {self.model_total:.2f} {currency}"
        rows.append(f"  {'total (Python)':<34} = {self.computed_total:>7.2f} {currency}  {verdict}")
        return "\n".join(rows)


def check_order(order: BaseModel, menu: Menu) -> OrderCheck:
    """Price ``order`` (from :func:`order_model`) with the menu; compare with its total."""
    lines = tuple((line.product, line.quantity, menu.price(line.product)) for line in order.items)
    computed = round(sum(q * p for _, q, p in lines), 2)
    return OrderCheck(lines, computed, float(order.total))


# --------------------------------------------------------------------------- the bot

SYSTEM_PROMPT = """Eres el camarero virtual de {shop}. Atiendes en español, con frases cortas y amables.
Solo vendes lo que hay en la carta, a estos precios:
{menu}
Reglas:
1. Si piden algo que no está en la carta, dilo y ofrece una alternativa de la carta.
2. No inventes precios ni productos.
3. Cuando el cliente termine, resume el pedido con cantidades y precios."""

ORDER_PROMPT = """Extrae el pedido final del cliente de la conversación delimitada por <conversacion>.
Usa solo productos de esta carta (nombre exacto) con su precio:
{menu}
Devuelve solo {schema}, donde "total" es la suma de cantidad × precio.
<conversacion>
{conversation}
</conversacion>"""


def is_exit(text: str | None) -> bool:
    """True for an empty line, ``None`` (end of input) or an exit word such as «salir»."""
    if text is None:
        return True
    cleaned = text.strip().strip(".!¡?¿ ").lower()
    return cleaned == "" or cleaned in EXIT_WORDS


@dataclass
class ShopBot:
    """A waiter bot for ``menu``: keeps the whole conversation, sends a trimmed window.

    Attributes:
        transcript: everything said (never trimmed); ``context()`` is what the model sees.
        sent / dropped: messages sent in / left out of the last request (``max_history_tokens``).
    """

    menu: Menu
    max_history_tokens: int
    client: LLMClient | None = None
    count_tokens: TokenCounter = estimate_tokens
    max_tokens: int | None = None
    system_prompt: str = ""
    transcript: list[Message] = field(default_factory=list)
    replies: list[Completion] = field(default_factory=list)
    dropped: int = 0
    sent: int = 0

    def __post_init__(self) -> None:
        if not self.system_prompt:
            self.system_prompt = SYSTEM_PROMPT.format(shop=self.menu.shop, menu=self.menu.as_text())

    def context(self) -> list[Message]:
        """System prompt + the newest messages that fit in the token budget."""
        full = [{"role": "system", "content": self.system_prompt}, *self.transcript]
        window = trim_history(full, self.max_history_tokens, self.count_tokens)
        self.dropped, self.sent = len(full) - len(window), len(window)
        return window

    def reply(self, user_text: str) -> Completion:
        """Add the customer's message, ask the model with the trimmed history, keep its answer."""
        self.transcript.append({"role": "user", "content": user_text})
        try:
            completion = chat(self.context(), client=self.client, max_tokens=self.max_tokens)
        except BaseException:
            self.transcript.pop()  # unanswered: the conversation stays as it was, ready to retry
            raise
        self.transcript.append({"role": "assistant", "content": completion.text})
        self.replies.append(completion)
        return completion

    def run(
        self,
        read: Callable[[str], str | None] = input,
        write: Callable[[str], Any] = print,
    ) -> int:
        """The conversation loop: read, answer, repeat until «salir» or an empty line.

        Returns the number of turns.  ``read`` is ``input`` for a person; pass
        ``scripted(lines)`` to replay a fixed conversation.
        """
        turns = 0
        while True:
            try:
                text = read("Tú: ")
            except EOFError:
                text = None
            if is_exit(text):
                write("(fin de la conversación)")
                return turns
            completion = self.reply(text)  # type: ignore[arg-type]
            turns += 1
            write(f"🤖 {completion.text.strip()}")
            write(f"   {completion.stats_line()} · enviados {self.sent} mensajes, {self.dropped} recortados")

    def customer_lines(self) -> list[str]:
        return [m["content"] for m in self.transcript if m["role"] == "user"]

    def take_order(self, *, constrained: bool = True, repairs: int = 2, **options: Any) -> JsonResult:
        """Ask for the final order as JSON (from what the *customer* said), validated.

        Uses the whole transcript, not the trimmed window: trimming is for the
        conversation, the order must not forget the first things asked for.
        """
        conversation = "\n".join(f"cliente: {line}" for line in self.customer_lines())
        model = order_model(self.menu)
        prompt = ORDER_PROMPT.format(
            menu=self.menu.as_text(), conversation=conversation, schema=describe_schema(model)
        )
        return ask_json(prompt, model, constrained=constrained, repairs=repairs, client=self.client, **options)


def scripted(lines: Iterable[str], echo: Callable[[str], Any] = print) -> Callable[[str], str | None]:
    """An ``input``-like function that replays ``lines`` (and prints them), then ends."""
    queue = iter(lines)

    def read(prompt: str) -> str | None:
        line = next(queue, None)
        echo(f"{prompt}{line if line is not None else ''}")
        return line

    return read
