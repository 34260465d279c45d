"""Local services the course starts (llama.cpp, Argilla): their shared process supervisor.

The service modules themselves stay at :mod:`utils.llm_server` and :mod:`utils.argilla_server`;
:mod:`utils.services.supervisor` holds what both need (liveness, start lock, socket
ownership, waiting, stopping a process group, a clean environment).
"""
