"""Local services the course starts (llama.cpp, Argilla) and the client of the LLM server.

:mod:`utils.services.supervisor` holds what both servers need (liveness, start lock, socket
ownership, waiting, stopping a process group, a clean environment); :mod:`utils.services.cli`
is their shared command line.
"""

__all__ = ["argilla_server", "cli", "llm_client", "llm_server", "ray_cluster", "supervisor"]
