"""Stand-ins for notebook 05 (prompting a local LLM), full profile.

Notebook 05 talks to the course's llama.cpp server, which in full downloads
``settings.llm.gguf`` = ``hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf``
through ``hf_hub_download``.  The stand-in repo serves SmolLM2-135M-Instruct's GGUF under
that name (see :func:`rehearsal.standins.common.qwen25_gguf`).  Its data (reviews, menu) are
committed files in ``data/``, the same in both profiles.
"""

from __future__ import annotations

from rehearsal.hub import HubTree
from rehearsal.standins.common import qwen25_gguf


def build(hub: HubTree) -> None:
    qwen25_gguf(hub)
