"""Pre-flight checks stop with an actionable message, never a stack trace."""

from __future__ import annotations

import http.server
import threading

import pytest

from utils.core.preflight import (
    Check,
    PreflightError,
    Service,
    check_asset,
    check_disk,
    check_gpu,
    check_package,
    check_secret,
    check_service,
    preflight,
)


def test_installed_package_at_its_pin():
    check = check_package("pytest", {"pytest": __import__("pytest").__version__})
    assert check.ok and not check.warning


def test_other_version_than_pin_is_a_warning_not_a_failure():
    check = check_package("pytest", {"pytest": "0.0.1"})
    assert check.ok and check.warning and "fija 0.0.1" in check.detail


def test_missing_package_names_the_install_command():
    check = check_package("surely-not-installed-pkg", {"surely-not-installed-pkg": "1.2.3"})
    assert not check.ok
    assert "make setup" in check.fix and "%pip install surely-not-installed-pkg==1.2.3" in check.fix


def test_gpu_check_on_this_cpu_machine():
    check = check_gpu(14)
    assert not check.ok
    assert "GPU" in check.fix and "COURSE_PROFILE=mini" in check.fix


def test_disk_check(tmp_path):
    assert check_disk(0.001, tmp_path).ok
    failed = check_disk(10**9, tmp_path)
    assert not failed.ok and "hacen falta" in failed.detail


def test_secret_check_never_shows_the_value(monkeypatch):
    monkeypatch.setenv("COURSE_TEST_KEY", "abcdef123456")
    check = check_secret("COURSE_TEST_KEY")
    assert check.ok and "abcdef" not in check.detail and "12 caracteres" in check.detail
    monkeypatch.delenv("COURSE_TEST_KEY")
    assert "export COURSE_TEST_KEY=" in check_secret("COURSE_TEST_KEY").fix


def test_service_up_and_down(unused_port):
    port = unused_port
    server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        up = check_service(Service("web", f"http://127.0.0.1:{port}/", "start it"))
        assert up.ok
    finally:
        server.shutdown()
        server.server_close()
    down = check_service(Service("web", f"http://127.0.0.1:{port}/", "scripts/llm_server start"), timeout=1)
    assert not down.ok and down.fix == "scripts/llm_server start"


def test_asset_check_uses_the_helpers_message():
    def locate():
        raise RuntimeError("Run `pip install thing`.")

    check = check_asset("thing", locate)
    assert not check.ok and check.fix == "Run `pip install thing`."


def test_preflight_lists_every_failure_with_its_fix(monkeypatch, isolated_build, capsys):
    monkeypatch.delenv("COURSE_TEST_KEY", raising=False)
    with pytest.raises(PreflightError) as info:
        preflight(
            packages=["pytest", "surely-not-installed-pkg"],
            secrets=["COURSE_TEST_KEY"],
            disk_gb=0.001,
            readme_section="Secretos",
        )
    out = capsys.readouterr().out
    assert "✔ paquete pytest" in out and "✘ paquete surely-not-installed-pkg" in out
    error = info.value
    assert len(error.failures) == 2
    rendered = error._render_traceback_()
    assert rendered[0].startswith("Comprobación previa fallida: 2 problema(s)")
    assert any("README §Secretos" in line for line in rendered)
    assert not any("Traceback" in line for line in rendered)


def test_preflight_passes_and_returns_checks(isolated_build):
    checks = preflight(packages=["pytest"], extra=[Check("custom", True, "fine")], quiet=True)
    assert [c.name for c in checks] == ["paquete pytest", "custom"]
