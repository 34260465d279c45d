"""The llama.cpp server fixture shared by the services and prompting tests."""

import os
import socket

import pytest

from utils.services.llm_server import default_config, stop


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    old = os.environ.get("COURSE_BUILD_DIR")
    os.environ["COURSE_BUILD_DIR"] = str(build)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = default_config(port=port)
    yield cfg
    stop(cfg.port)
    if old is None:
        os.environ.pop("COURSE_BUILD_DIR", None)
    else:
        os.environ["COURSE_BUILD_DIR"] = old
