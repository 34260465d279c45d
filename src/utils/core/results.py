"""Figures a notebook measured (times, scores, counts), saved to ``build/results/<name>.json``.

Every value is written as soon as it is recorded (atomically), so a notebook that stops
halfway still leaves what it measured; ``make course`` prints these files in its summary.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from utils.core.paths import results_dir


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars → Python numbers, NaN/inf → None, tuples → lists."""
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Results:
    """The results file of one notebook.

    >>> results = Results("03_datos_buenos_vs_malos", profile="mini")  # doctest: +SKIP
    >>> results.record(chrf_good=41.2, chrf_bad=30.5)  # doctest: +SKIP
    >>> with results.timer("train_good_s"):  # doctest: +SKIP
    ...     trainer.train()
    """

    def __init__(self, notebook: str, profile: str, path: Path | None = None):
        self.notebook = notebook
        self.profile = profile
        self.path = path or results_dir() / f"{notebook}.json"
        self.values: dict[str, Any] = {}
        self._started = time.time()

    def record(self, **values: Any) -> dict[str, Any]:
        """Add or overwrite values and save the file. Returns the cleaned values."""
        cleaned = {k: _clean(v) for k, v in values.items()}
        self.values.update(cleaned)
        self.save()
        return cleaned

    @contextmanager
    def timer(self, key: str) -> Iterator[None]:
        """Record the wall time of the ``with`` block, in seconds, under ``key``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.record(**{key: round(time.perf_counter() - start, 2)})

    def save(self) -> Path:
        """Write the file atomically (a reader never sees half a file)."""
        payload = {
            "notebook": self.notebook,
            "profile": self.profile,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "elapsed_s": round(time.time() - self._started, 1),
            "values": self.values,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
        os.replace(tmp, self.path)
        return self.path


def load_results(notebook: str, directory: Path | None = None) -> dict[str, Any] | None:
    """The saved results of ``notebook``, or None if it has not run."""
    path = (directory or results_dir()) / f"{notebook}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
