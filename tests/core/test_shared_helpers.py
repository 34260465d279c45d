"""Language identification, retries and exercise reports (shared by several notebooks)."""

from __future__ import annotations

import random

import pytest

from utils.core.errors import CourseError
from utils.core.exercises import Expectation, report
from utils.core.language import detect_language, is_language
from utils.core.retry import RetryPolicy, TransientError, is_transient, retry_call


def test_detects_spanish_and_english():
    assert detect_language("¿Qué objetos aparecen en la imagen y de qué color son?").lang == "es"
    assert detect_language("What objects appear in the image and what colour are they?").lang == "en"
    assert is_language("La capital de Francia es París, una ciudad muy poblada.") is True
    assert is_language("The capital of France is Paris, a very big city.") is False


def test_short_or_code_only_text_is_undetermined():
    assert detect_language("OK").lang == "und"
    assert detect_language("<image>\n```python\nprint(1)\n```  https://x.org 42").lang == "und"
    assert is_language("42") is None


class Status(Exception):
    def __init__(self, code):
        self.status_code = code


@pytest.mark.parametrize(
    "exc, expected",
    [
        (TimeoutError(), True),
        (ConnectionResetError(), True),
        (Status(429), True),
        (Status(503), True),
        (Status(400), False),
        (Status(404), False),
        (ValueError("bad"), False),
        (TransientError("x"), True),
    ],
)
def test_transient_classification(exc, expected):
    assert is_transient(exc) is expected


def test_openai_errors_are_classified():
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    assert is_transient(openai.APITimeoutError(request=request))
    assert is_transient(openai.APIConnectionError(request=request))
    bad = openai.BadRequestError("bad", response=httpx.Response(400, request=request), body=None)
    assert not is_transient(bad)


def test_retry_until_success_with_growing_capped_delays():
    calls, delays = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise TimeoutError("slow")
        return "done"

    policy = RetryPolicy(attempts=5, base_delay=1.0, max_delay=3.0)
    assert retry_call(flaky, policy, sleep=delays.append, rng=random.Random(0)) == "done"
    assert len(calls) == 4 and len(delays) == 3
    assert all(0 <= d <= min(3.0, 2**i) for i, d in enumerate(delays))


def test_permanent_errors_are_not_retried_and_attempts_are_bounded():
    calls = []

    def bad():
        calls.append(1)
        raise ValueError("permanent")

    with pytest.raises(ValueError):
        retry_call(bad, sleep=lambda s: None)
    assert len(calls) == 1

    def always_slow():
        calls.append(1)
        raise TimeoutError("again")

    calls.clear()
    with pytest.raises(TimeoutError):
        retry_call(always_slow, RetryPolicy(attempts=3), sleep=lambda s: None)
    assert len(calls) == 3


def test_report(capsys):
    assert report("demo", [Expectation(True, "a"), Expectation(True, "b")]) is True
    assert report("demo", [Expectation(True, "a"), Expectation(False, "b", "mira X")]) is False
    out = capsys.readouterr().out
    assert "✅ a" in out and "❌ b — pista: mira X" in out
    assert report("empty", []) is False


def test_course_errors_render_as_their_message_only():
    from utils.core.assets import AssetMissingError
    from utils.core.preflight import PreflightError
    from utils.core.secrets import MissingSecretError
    from utils.services.llm_server import LLMServerError

    assert CourseError("Run `make setup`.")._render_traceback_() == ["❌ Run `make setup`."]
    for cls in (AssetMissingError, LLMServerError, MissingSecretError, PreflightError):
        assert issubclass(cls, CourseError) and issubclass(cls, RuntimeError)
    # Data errors of the notebooks are also ValueErrors (callers catch them as such).
    from utils.good_bad.mt_eval import EvaluationError
    from utils.good_bad.translation_pairs import PairsError
    from utils.llava_vqa.llava_model import ImageTokenMismatchError
    from utils.llava_vqa.vqa_data import VqaDataError

    for cls in (EvaluationError, PairsError, ImageTokenMismatchError, VqaDataError):
        assert issubclass(cls, CourseError) and issubclass(cls, ValueError)
        assert cls("fix the file")._render_traceback_() == ["❌ fix the file"]
