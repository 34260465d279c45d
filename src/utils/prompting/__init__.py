"""Notebook 05: prompting a local LLM through an OpenAI-compatible API.

Imports only :mod:`utils.core` and :mod:`utils.services` (``tests/test_layout.py``).
"""

__all__ = ["chatbot", "prompt_exercises", "structured_output"]
