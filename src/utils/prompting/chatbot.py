"""What notebook 05's shop chatbot needs that is not the lesson: counting tokens, trimming
the history to a budget, the menu file, and pricing an order in Python.

The chat loop, the system prompt and the order's pydantic model are written in the notebook
(section 8); these helpers are the parts a learner uses without rewriting:

.. code-block:: python

    menu = Menu.load(data_dir() / "tienda_menu.json")
    window = trim_history(messages, 450, server_token_counter(llm))  # system + newest turns
    check_order(order, menu).receipt()                               # the total, by Python

The model only *talks*; prices and totals come from the menu and from Python, because a
language model is not a calculator.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel

from utils.core.errors import CourseError
from utils.services.llm_client import LLMClient, default_client

Message = dict[str, str]
TokenCounter = Callable[[str], int]

#: Chat-template tokens around each message (``<|im_start|>role\n … <|im_end|>\n``), rounded up.
MESSAGE_OVERHEAD = 6
#: Tokens that open the assistant's reply (``<|im_start|>assistant\n``), rounded up.
REPLY_OVERHEAD = 4
#: Characters per token assumed when the server cannot count (Spanish ≈ 2.5–4 depending on
#: the tokenizer; a low value overestimates tokens, which is the safe side).
CHARS_PER_TOKEN = 2.5


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
            f"sistema y la última pregunta ({need} tokens). Súbelo en la celda de arranque "
            '(start("05_prompting_llm_local", max_history_tokens=...)) o acorta el mensaje de sistema.'
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
    """Price ``order`` (``items`` of ``product``/``quantity`` and a ``total``, the ``Order``
    model of notebook 05, section 8) with the menu; compare with the total the model claimed."""
    lines = tuple((line.product, line.quantity, menu.price(line.product)) for line in order.items)
    computed = round(sum(q * p for _, q, p in lines), 2)
    return OrderCheck(lines, computed, float(order.total))
