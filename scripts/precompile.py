"""Byte-compile what the course imports, once, right after ``pip install --no-compile`` (scripts/setup).

pip byte-compiles every file it installs: 22,237 files, ~40 CPU s on one core (measured 30-11-2026 on
fresh venvs: install 86 s with compilation, 32 s without, then 14 s here).  The course imports 6,347 of
them.  Importing them here, in two processes side by side, writes their ``.pyc`` files once, even
where ``PYTHONDONTWRITEBYTECODE`` is set for everything else; files nothing imports here are
compiled when something first imports them.

Usage: ``.venv/bin/python scripts/precompile.py`` (from ``scripts/setup``; a failed import is
reported and the setup goes on: tests will show the same error with its context).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

#: Modules imported in two processes side by side (each ~10 s on one core of the course machines).
GROUPS = (
    (
        "torch", "transformers", "peft", "trl", "accelerate", "datasets", "sacrebleu", "bitsandbytes",
        "transformers.models.llava.modeling_llava", "transformers.models.marian.modeling_marian",
        "transformers.models.llama.modeling_llama", "transformers.trainer",
        "utils.core", "utils.good_bad", "utils.llava_vqa", "utils.translate",
    ),
    (
        "distilabel.pipeline", "distilabel.models", "distilabel.steps", "argilla", "ray", "openai", "ctranslate2",
        "llama_cpp", "fastapi", "uvicorn", "matplotlib.pyplot", "pandas", "pytest", "nbval", "nbclient",
        "ipykernel.kernelapp", "utils.services", "utils.sft_dpo", "utils.prompting",
    ),
)  # fmt: skip


def main() -> int:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # write the .pyc files
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "\n".join(f"import {name}" for name in group)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for group in GROUPS
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            print(f"setup: aviso: la precompilación no pudo importar todo:\n{err.decode(errors='replace')[-2000:]}")
    print(f"setup: bytecode de lo que importa el curso escrito en {time.perf_counter() - started:.0f} s")
    return 0  # an optimisation: never the reason a setup fails


if __name__ == "__main__":
    sys.exit(main())
