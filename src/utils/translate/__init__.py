"""Translate LLaVA conversation datasets to Spanish: robust, resumable and fast (notebook 01).

.. code-block:: python

    from utils.translate import make_backend, run_translation, merge_outputs

    backend = make_backend()                       # the profile's seq2seq MT model
    report = run_translation("llava.json", "build/llava_es", backend, chunk_size=500)
    merge_outputs(["build/llava_es"], "build/llava_es.jsonl")

The command line (``python -m utils.translate run|merge``) is :mod:`utils.translate.__main__`.

Modules: :mod:`~utils.translate.segments` (protection and sentence splitting),
:mod:`~utils.translate.records` (LLaVA rows), :mod:`~utils.translate.backends` (MT model or
chat endpoint), :mod:`~utils.translate.ct2_backend` (the MT model on CTranslate2),
:mod:`~utils.translate.store` (chunks, commit log, cache),
:mod:`~utils.translate.quality` (checks), :mod:`~utils.translate.engine` (the loop, merge),
:mod:`~utils.translate.workdir` (a private work folder per notebook run).
"""

from utils.translate.backends import Backend, ChatBackend, ChatPrompt, Seq2SeqBackend, make_backend
from utils.translate.ct2_backend import CTranslate2Backend
from utils.translate.engine import BackendUnavailableError, SegmentTranslator, merge_outputs, run_translation
from utils.translate.quality import QAConfig, check_rows, checks_frame, plot_checks
from utils.translate.records import TranslateError, load_rows
from utils.translate.segments import DEFAULT_RULES, ProtectionRules, Segment, Template, segment_text
from utils.translate.store import Shard

__all__ = [
    "DEFAULT_RULES",
    "Backend",
    "BackendUnavailableError",
    "CTranslate2Backend",
    "ChatBackend",
    "ChatPrompt",
    "ProtectionRules",
    "QAConfig",
    "Segment",
    "SegmentTranslator",
    "Seq2SeqBackend",
    "Shard",
    "Template",
    "TranslateError",
    "check_rows",
    "checks_frame",
    "load_rows",
    "make_backend",
    "merge_outputs",
    "plot_checks",
    "run_translation",
    "segment_text",
]
