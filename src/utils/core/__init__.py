"""Course core: profiles and settings, notebook start, pre-flight, errors, secrets, offline assets, paths, results, retries, exercise checks.

Imports only :mod:`utils.core` (``tests/test_layout.py``).
"""

__all__ = [
    "assets",
    "colab_runtime",
    "course",
    "errors",
    "exercises",
    "finetune",
    "language",
    "notebook",
    "paths",
    "preflight",
    "results",
    "retry",
    "secrets",
    "settings",
]
