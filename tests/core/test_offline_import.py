"""`import utils` works with HF_HUB_OFFLINE=1 and no network, and stays cheap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

FOUNDATION_MODULES = [
    "utils",
    "utils.core.paths",
    "utils.core.errors",
    "utils.core.settings",
    "utils.core.course",
    "utils.core.secrets",
    "utils.core.preflight",
    "utils.core.assets",
    "utils.core.results",
    "utils.core.notebook",
    "utils.services.llm_server",
    "utils.services.llm_client",
    "utils.core.language",
    "utils.core.retry",
    "utils.core.exercises",
]

SCRIPT = textwrap.dedent(
    """
    import socket, sys

    def refuse(*args, **kwargs):
        raise OSError("network disabled by the test")

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import importlib
    for name in {modules!r}:
        importlib.import_module(name)
    heavy = [m for m in ("torch", "transformers", "datasets", "openai") if m in sys.modules]
    assert not heavy, f"importing utils pulled in heavy libraries: {{heavy}}"

    from utils.core.notebook import start
    ctx = start("01_traducir_llava_instruct")
    import os
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    print("OK", ctx.profile)
    """
).format(modules=FOUNDATION_MODULES)


def test_import_without_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("COURSE_PROFILE", "COLAB_RELEASE_TAG")}
    env.update(HF_HUB_OFFLINE="1", COURSE_BUILD_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("OK mini")
