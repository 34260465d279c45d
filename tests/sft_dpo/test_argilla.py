"""The real local Argilla server: lifecycle, push → annotate → pull, idempotent re-push, web UI.

The dataset settings (``rg.Settings``) and the record builders (``rg.Record``) are notebook
02's own cells (section 6), run by :func:`nb02_fixtures.notebook_cells`.

These tests use the server `make test` starts (`scripts/with_services`), or start it
themselves (same ports: ``COURSE_ARGILLA_PORT`` …) and stop it at the end if they did.
Each test works in its own datasets, deleted afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from nb02_fixtures import notebook_cells

from utils.services import argilla_server
from utils.services.argilla_server import ArgillaServerError
from utils.sft_dpo import argilla_io
from utils.sft_dpo.simulated_review import Review
from utils.sft_dpo.text_embeddings import embed

pytestmark = pytest.mark.server

CONTEXT = (
    "La Alhambra es un conjunto de palacios y jardines situado en Granada. "
    "Fue residencia de los sultanes nazaríes entre los siglos XIII y XV. "
    "En 1984 la Unesco la declaró Patrimonio de la Humanidad."
)
ROWS = [
    {"article_id": "alhambra-1", "instruction": "¿Dónde está la Alhambra?", "response": "La Alhambra está en Granada, en el sur de España."},
    {"article_id": "alhambra-2", "instruction": "¿Quién vivió en la Alhambra?", "response": "Los romanos construyeron allí un gran circo."},
    {"article_id": "alhambra-3", "instruction": "¿Cuál es tu color favorito?", "response": "Me gusta mucho el azul del mar."},
]  # fmt: skip


@pytest.fixture(scope="module")
def client():
    """A client of the local server; starts it (and stops it afterwards) if nobody had."""
    started_here = not argilla_server.status().healthy
    argilla_server.start()
    yield argilla_io.connect(start_local=False)
    if started_here:
        argilla_server.stop()


@pytest.fixture
def cells(client):
    """The notebook's Argilla cells (fresh ``rg.Settings`` objects for each test), after the client."""
    return notebook_cells("mini", argilla=True)


@pytest.fixture
def datasets(client, cells):
    """Fresh SFT and DPO datasets with unique names, created as the notebook does, deleted after the test."""
    import argilla as rg

    suffix = uuid.uuid4().hex[:8]
    sft = rg.Dataset(
        name=f"test-sft-{suffix}", workspace="argilla", settings=cells.sft_settings, client=client
    ).create()
    dpo = rg.Dataset(
        name=f"test-dpo-{suffix}", workspace="argilla", settings=cells.dpo_settings, client=client
    ).create()
    yield sft, dpo
    for dataset in (sft, dpo):
        dataset.delete()


def _push(dataset, records) -> int:
    """``dataset.records.log`` as the notebook calls it; how many records the dataset then holds."""
    dataset.records.log(records)
    return argilla_io.count_records(dataset)


def _sft_records(rows=ROWS):
    sft_record = notebook_cells("mini", argilla=True).sft_record
    vectors = embed([r["instruction"] for r in rows])
    records = []
    for row, vector in zip(rows, vectors):
        full = {**row, "title": "Alhambra", "content": CONTEXT,
                "conversation": [{"role": "user", "content": row["instruction"]},
                                 {"role": "assistant", "content": row["response"]}]}  # fmt: skip
        records.append(sft_record(full, vector, 4, 0.6))
    return records, vectors


def test_server_is_healthy_and_start_is_idempotent(client):
    first = argilla_server.status()
    assert first.healthy and set(first.pids) == {"search", "argilla"}
    again = argilla_server.start()
    assert again.pids == first.pids  # reused, not a second server
    config = argilla_server.default_config()
    assert config.service.state_file.is_file() and config.log_file.is_file()
    assert argilla_server.is_healthy(config.api_url)
    assert not argilla_server.is_healthy(config.api_url, api_key="wrong-key")
    assert client.me.username == argilla_server.LOCAL_USERNAME


def test_push_annotate_pull_round_trip(client, datasets):
    sft, _dpo = datasets
    records, vectors = _sft_records()
    assert _push(sft, records) == 3
    assert _push(sft, records) == 3  # same ids: updated, not duplicated

    reviews = {
        "sft-alhambra-1": Review("submitted", {"calidad": 5, "usa_contexto": "si"}),
        "sft-alhambra-2": Review("submitted", {"calidad": 2, "usa_contexto": "no",
                                               "respuesta_corregida": "Vivieron los sultanes nazaríes."}),
        "sft-alhambra-3": Review("discarded"),
    }  # fmt: skip
    assert argilla_io.submit_reviews(sft, reviews, client.me.id) == 3
    pulled = {p.id: p for p in argilla_io.pull_reviews(sft)}
    assert {k: p.status for k, p in pulled.items()} == {
        "sft-alhambra-1": "submitted", "sft-alhambra-2": "submitted", "sft-alhambra-3": "discarded"
    }  # fmt: skip
    assert pulled["sft-alhambra-1"].values == {"calidad": 5, "usa_contexto": "si"}
    assert argilla_io.review_counts(list(pulled.values())) == {"annotated": 3, "discarded": 1, "corrected": 1}

    final = {row["id"]: row for row in argilla_io.final_sft(list(pulled.values()))}
    assert set(final) == {"sft-alhambra-1", "sft-alhambra-2"}  # the discard is gone
    assert final["sft-alhambra-2"]["messages"][-1]["content"] == "Vivieron los sultanes nazaríes."  # correction wins
    assert final["sft-alhambra-1"]["messages"][-1]["content"] == ROWS[0]["response"]

    # Reviewing again (a re-run of the notebook) replaces the reviewer's earlier answers.
    argilla_io.submit_reviews(
        sft, {"sft-alhambra-1": Review("submitted", {"calidad": 3, "usa_contexto": "no"})}, client.me.id
    )
    again = {p.id: p for p in argilla_io.pull_reviews(sft, ids=["sft-alhambra-1"])}
    assert list(again) == ["sft-alhambra-1"] and again["sft-alhambra-1"].values == {"calidad": 3, "usa_contexto": "no"}

    # Re-pushing after the review keeps one record per id and keeps the responses.
    assert _push(sft, records) == 3
    assert {p.id: p.status for p in argilla_io.pull_reviews(sft)}["sft-alhambra-3"] == "discarded"

    # Vector search works on the search engine stand-in: a record is its own nearest neighbour.
    import argilla as rg

    query = rg.Query(similar=rg.Similar(name="instruccion_vec", value=[float(x) for x in vectors[0]]))
    similar = [(record.id, score) for record, score in sft.records(query=query, limit=2)]
    assert similar[0][0] == "sft-alhambra-1"


def test_dpo_ranking_round_trip(client, datasets, cells):
    _, dpo = datasets
    judged = [
        {"article_id": "p1", "title": "Alhambra", "content": CONTEXT, "instruction": "¿Dónde está la Alhambra?",
         "generations": ["En Granada.", "En Roma, junto al Coliseo."], "ratings": [2, 4]},
        {"article_id": "p2", "title": "Alhambra", "content": CONTEXT, "instruction": "¿Qué declaró la Unesco?",
         "generations": ["Que era Patrimonio de la Humanidad.", "Nada importante."], "ratings": [5, 1]},
    ]  # fmt: skip
    vectors = embed([r["instruction"] for r in judged])
    records = [cells.dpo_record(r, v) for r, v in zip(judged, vectors)]
    assert records[0].suggestions["ranking"].value == ["respuesta_2", "respuesta_1"]  # the judge's order
    assert _push(dpo, records) == 2
    reviews = {
        "dpo-p1": Review("submitted", {"ranking": ["respuesta_1", "respuesta_2"]}),  # the reviewer disagrees
        "dpo-p2": Review("submitted", {"ranking": ["respuesta_1", "respuesta_2"],
                                       "respuesta_corregida": "La declaró Patrimonio de la Humanidad en 1984."}),
    }  # fmt: skip
    argilla_io.submit_reviews(dpo, reviews, client.me.id)
    pulled = argilla_io.pull_reviews(dpo)
    rows = {row["id"]: row for row in argilla_io.final_dpo(pulled)}
    assert rows["dpo-p1"]["chosen"][0]["content"] == "En Granada."  # the human ranking, not the judge's
    assert rows["dpo-p1"]["rejected"][0]["content"] == "En Roma, junto al Coliseo."
    assert rows["dpo-p2"]["chosen"][0]["content"].endswith("en 1984.")  # correction replaces the best answer
    assert argilla_io.judge_agreement(judged, pulled) == (2, 0.5)


def test_dataset_with_other_questions_is_an_actionable_error(client, datasets, cells):
    sft, _ = datasets
    assert argilla_io.existing_dataset(client, sft.name, "argilla", cells.sft_settings).name == sft.name
    assert argilla_io.existing_dataset(client, "no-existe-" + sft.name, "argilla", cells.sft_settings) is None
    with pytest.raises(argilla_io.ArgillaConfigError, match="ya existe con otros campos o preguntas.*Bórralo"):
        argilla_io.existing_dataset(client, sft.name, "argilla", cells.dpo_settings)


def test_a_wrong_api_key_is_a_spanish_message_not_a_traceback(client, monkeypatch, no_colab):
    """The real server refuses the key (ArgillaCredentialsError in the SDK): the learner
    reads which variable to fix and where, and never the key itself."""
    from utils.core.settings import get_settings

    monkeypatch.setenv("ARGILLA_API_URL", client.api_url)
    monkeypatch.setenv("ARGILLA_API_KEY", "clave-equivocada-1234567890")
    with pytest.raises(argilla_io.ArgillaConfigError) as info:
        argilla_io.connect(get_settings("full"))
    message = str(info.value)
    assert "rechaza la clave" in message and "ARGILLA_API_KEY" in message
    assert "secretos de Colab" in message and "export ARGILLA_API_KEY=" in message and "README §Argilla" in message
    assert "clave-equivocada" not in message
    assert info.value._render_traceback_() == [f"❌ {message}"]  # what Jupyter shows instead of a traceback
    assert info.value.__suppress_context__  # the SDK's English chain is not printed under it


# --------------------------------------------------------------------------- the web UI

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
]  # fmt: skip


def _browser_or_skip():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def test_web_ui_shows_a_pushed_record(client, datasets, repo_root):
    chromium, driver_path = _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    sft, _ = datasets
    marker = f"¿Qué altura tiene la torre {uuid.uuid4().hex[:6]}?"
    records, _ = _sft_records(
        [{"article_id": "ui-1", "instruction": marker, "response": "Tiene unos treinta metros de altura."}]
    )
    _push(sft, records)

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    artifacts = repo_root / "build" / "test-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(browser, 90)
        api_url = argilla_server.default_config().api_url
        browser.get(f"{api_url}/sign-in")
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[type=password]")))
        browser.find_element(By.CSS_SELECTOR, "input:not([type=password])").send_keys(argilla_server.LOCAL_USERNAME)
        browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(argilla_server.LOCAL_PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        wait.until(lambda b: "sign-in" not in b.current_url)
        browser.get(f"{api_url}/dataset/{sft.id}/annotation-mode")
        wait.until(lambda b: marker in b.find_element(By.TAG_NAME, "body").text)
        time.sleep(0.5)  # let the page finish painting for the screenshot
        shot = artifacts / "argilla_ui_record.png"
        browser.save_screenshot(str(shot))
        assert Path(shot).stat().st_size > 10_000
    except Exception:
        browser.save_screenshot(str(artifacts / "argilla_ui_failure.png"))
        raise
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


# --------------------------------------------------------------------------- lifecycle


def test_bad_port_and_busy_port_are_actionable(monkeypatch, isolated_build):
    monkeypatch.setenv("COURSE_ARGILLA_PORT", "69000")
    with pytest.raises(ArgillaServerError, match="COURSE_ARGILLA_PORT='69000' no es un número de puerto"):
        argilla_server.default_config()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("COURSE_ARGILLA_PORT", str(busy.getsockname()[1]))
        with pytest.raises(ArgillaServerError, match="ya lo usa otro programa.*export COURSE_ARGILLA_PORT"):
            argilla_server.start()
    assert argilla_server.stop() is False  # nothing of ours runs there: a clean no-op


def test_stop_is_clean_and_restart_keeps_the_data(client, datasets):
    sft, _ = datasets
    records, _ = _sft_records(ROWS[:1])
    _push(sft, records)
    config = argilla_server.default_config()
    pids = argilla_server.status().pids
    assert argilla_server.stop() is True
    assert argilla_server.stop() is False  # idempotent
    assert not any(Path(f"/proc/{pid}").exists() and config.service.alive(pid) for pid in pids.values())
    for port in (config.port, config.search_port, config.redis_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open after stop"
    assert not argilla_server.status().running
    argilla_server.start()  # the data folder is reused: no migration, the dataset is still there
    assert (
        argilla_io.count_records(argilla_io.connect(start_local=False).datasets(name=sft.name, workspace="argilla"))
        == 1
    )


def test_a_child_that_dies_during_start_up_is_reported_with_its_code(isolated_build):
    """Liveness of our own children comes from Popen.poll, not from /proc parsing."""
    import subprocess
    import sys

    config = argilla_server.ArgillaServerConfig(port=6999, search_port=9299, redis_port=6399)
    config.search_log_file.parent.mkdir(parents=True, exist_ok=True)
    config.search_log_file.write_text("boom: the search engine failed\n", encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(
        ArgillaServerError, match=r"proceso search de Argilla se cerró durante el arranque con código 3(.|\n)*boom"
    ):
        argilla_server._wait_until(lambda: False, "search", config, {"search": child.pid}, 10, {"search": child})
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ArgillaServerError, match="no respondió en 1 s"):
            argilla_server._wait_until(lambda: False, "search", config, {"search": alive.pid}, 1, {"search": alive})
    finally:
        alive.kill()
        alive.wait()


def test_two_simultaneous_starts_share_one_private_server_without_secrets(tmp_path):
    """Two `scripts/argilla_server start` at once on fresh ports and a fresh data folder.

    One server comes up (the second start waits on the lock and reuses it), the recorded
    pids hold the three ports, no process inherits the learner's secrets, and the data
    (``argilla.db``, noida's control file with its token) is private to the user.
    """
    import subprocess
    import sys

    from conftest import free_port

    from utils.services import supervisor

    secrets = {"HF_TOKEN": "hf_secret_value_1", "OPENAI_API_KEY": "sk-secret-value-2",
               "ARGILLA_API_KEY": "argilla secret value 3", "GITHUB_TOKEN": "ghp_secret_value_4"}  # fmt: skip
    ports = {"COURSE_ARGILLA_PORT": free_port(), "COURSE_ARGILLA_SEARCH_PORT": free_port(),
             "COURSE_ARGILLA_REDIS_PORT": free_port()}  # fmt: skip
    env = {**os.environ, **secrets, **{k: str(v) for k, v in ports.items()}, "COURSE_BUILD_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "utils.services.argilla_server", "start"]
    starts = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]  # fmt: skip
    config = argilla_server.ArgillaServerConfig(*ports.values())
    old_build = os.environ.get("COURSE_BUILD_DIR")
    os.environ["COURSE_BUILD_DIR"] = str(tmp_path)
    try:
        outputs = [proc.communicate(timeout=600) for proc in starts]
        assert [proc.returncode for proc in starts] == [0, 0], outputs
        current = argilla_server.status(config)
        assert current.healthy and all(str(current.pids) in out for out, _ in outputs), outputs
        assert supervisor.owns_port(current.pids["argilla"], config.port)
        assert supervisor.owns_port(current.pids["search"], config.search_port)
        ours = {member for pid in current.pids.values() for member in [pid, *supervisor.group_members(pid)]}
        for port in (config.port, config.search_port, config.redis_port):
            owners = supervisor.port_owners(port)
            assert owners and set(owners) <= ours, (port, owners, current.pids)  # no orphan holds a port

        for pid in current.pids.values():
            environ = dict(i.split("=", 1) for i in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in i)
            assert not set(secrets) & set(environ), f"pid {pid} inherited the learner's secrets"
            assert not any(v in environ.values() for v in secrets.values())

        data = config.data_dir
        database = data / "home" / "argilla.db"
        control = sorted(data.rglob("noida.control.json"))
        assert database.is_file() and control, sorted(p.name for p in data.rglob("*"))
        for path in [database, *control]:
            assert path.stat().st_mode & 0o777 == 0o600, (path, oct(path.stat().st_mode))
        assert data.stat().st_mode & 0o777 == 0o700
        exposed = [p for p in [data, *data.rglob("*")] if not p.is_symlink() and p.stat().st_mode & 0o077]
        assert not exposed, exposed
    finally:
        argilla_server.stop(config)
        if old_build is None:
            os.environ.pop("COURSE_BUILD_DIR", None)
        else:
            os.environ["COURSE_BUILD_DIR"] = old_build
    for port in (config.port, config.search_port, config.redis_port):
        assert not supervisor.port_busy("127.0.0.1", port), f"port {port} still open after stop"
