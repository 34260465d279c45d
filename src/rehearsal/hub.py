"""FakeHub: a local HTTP server that speaks enough of the Hugging Face Hub API.

The rehearsal points ``HF_ENDPOINT`` at this server, so the notebooks' own
``from_pretrained`` / ``load_dataset`` / ``hf_hub_download`` calls run unchanged, with the
real Hub ids, against tiny stand-ins written on disk by the builders in
:mod:`rehearsal.standins`.

What it serves (read from the installed clients: huggingface_hub 2.4 ``hf_api.py``,
``file_download.py``, ``hf_file_system.py``; datasets 5.2 ``load.py``; transformers 5.23
``utils/hub.py``):

* ``GET /api/{models,datasets}/<repo>[/revision/<rev>]`` — repo info (``model_info`` /
  ``dataset_info``): ``id``, ``sha``, ``siblings`` (with ``size`` and ``blobId``),
  ``cardData`` parsed from the README's YAML header.
* ``HEAD``/``GET /<repo>/resolve/<rev>/<file>`` and ``/datasets/<repo>/resolve/<rev>/<file>``
  with ``ETag``, ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges`` and ``Range``
  requests (206 / 416), as ``hf_hub_download`` and ``HfFileSystem`` (streaming) need.
* ``GET /api/<type>s/<repo>/tree/<rev>[/<path>]?recursive=`` — tree listing (HfFileSystem,
  ``list_repo_files``, datasets' data-file resolution).
* ``POST /api/<type>s/<repo>/paths-info/<rev>`` — ``get_paths_info`` (HfFileSystem ``info``).
* ``GET /api/<type>s/<repo>/refs`` — ``list_repo_refs``.

Errors follow the Hub: an unknown repo is a 404 with ``X-Error-Code: RepoNotFound`` (the client
raises ``RepositoryNotFoundError``), an unknown revision ``RevisionNotFound``, a missing file
``EntryNotFound`` (with ``X-Repo-Commit``, so the client caches the miss like with the Hub).
Anything else is a 404 and is logged as ``UNHANDLED`` so a gap in this emulation is visible.
Each request is logged (method, path, status) in :attr:`FakeHub.requests` and, optionally, a
log file.

What it does not do: authentication, gated repos, uploads, Xet storage (files are served as
plain HTTP, like a Hub mirror without Xet), the dataset viewer (``datasets-server``; the
``datasets`` client then falls back to reading the repo's files, as it does for any repo
without a parquet export).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = ("model", "dataset")
#: Revisions the server accepts besides a repo's own commit sha.
BRANCH = "main"
_CHUNK = 1 << 20


def _validate_repo_id(repo_id: str) -> None:
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
        raise ValueError(f"repo id must look like 'org/name', got {repo_id!r}")


def git_blob_oid(path: Path) -> str:
    """The git object id of a file (what the Hub reports as ``oid`` / ``blobId``)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Repo:
    """One served repository: its files, their git oids and the commit sha derived from them."""

    repo_type: str
    repo_id: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # path in repo -> file on disk
    oids: dict[str, str] = field(default_factory=dict)
    sha: str = ""
    last_modified: str = ""

    @classmethod
    def scan(cls, repo_type: str, repo_id: str, folder: Path) -> Repo:
        repo = cls(repo_type, repo_id, folder)
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_file() and not any(
                part.startswith(".") and part != ".gitattributes" for part in rel.split("/")
            ):
                repo.files[rel] = path
        listing = hashlib.sha1()
        for rel, path in repo.files.items():
            repo.oids[rel] = git_blob_oid(path)
            listing.update(f"{rel}\0{repo.oids[rel]}\n".encode())
        repo.sha = listing.hexdigest()
        mtime = max((p.stat().st_mtime for p in repo.files.values()), default=time.time())
        repo.last_modified = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(mtime))
        return repo

    def folders(self) -> set[str]:
        out: set[str] = set()
        for rel in self.files:
            parts = rel.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                out.add("/".join(parts[:i]))
        return out

    def entry(self, rel: str) -> dict:
        """A tree / paths-info entry, shaped like the Hub's."""
        if rel in self.files:
            return {"type": "file", "oid": self.oids[rel], "size": self.files[rel].stat().st_size, "path": rel}
        oid = hashlib.sha1(f"tree {self.sha} {rel}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": rel}

    def card_data(self) -> dict | None:
        """The YAML header of README.md, as the Hub returns it in ``cardData``."""
        readme = self.files.get("README.md")
        if readme is None:
            return None
        text = readme.read_text(encoding="utf-8")
        if not text.startswith("---"):
            return None
        header = text[3:].split("\n---", 1)[0]
        import yaml

        data = yaml.safe_load(header)
        return data if isinstance(data, dict) else None

    def info(self) -> dict:
        org = self.repo_id.split("/")[0]
        data = {
            "_id": self.sha[:24],
            "id": self.repo_id,
            "author": org,
            "sha": self.sha,
            "lastModified": self.last_modified,
            "createdAt": self.last_modified,
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [
                {"rfilename": rel, "size": path.stat().st_size, "blobId": self.oids[rel]}
                for rel, path in self.files.items()
            ],
        }
        card = self.card_data()
        if card is not None:
            data["cardData"] = card
        if self.repo_type == "model":
            data["modelId"] = self.repo_id
            config = self.folder / "config.json"
            if config.is_file():
                try:
                    cfg = json.loads(config.read_text(encoding="utf-8"))
                    data["config"] = {k: cfg[k] for k in ("architectures", "model_type") if k in cfg}
                except (OSError, ValueError):
                    pass
        return data


class HubTree:
    """An on-disk tree of Hub repos: ``<root>/models/<org>/<name>/`` and ``<root>/datasets/…``.

    Builders ask for an empty repo folder with :meth:`model` / :meth:`dataset` and write the
    files of the real repo's layout into it.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _folder(self, repo_type: str, repo_id: str) -> Path:
        _validate_repo_id(repo_id)
        return self.root / f"{repo_type}s" / repo_id

    def _fresh(self, repo_type: str, repo_id: str) -> Path:
        folder = self._folder(repo_type, repo_id)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def model(self, repo_id: str) -> Path:
        """An empty folder for model repo ``repo_id`` (any previous content is removed)."""
        return self._fresh("model", repo_id)

    def dataset(self, repo_id: str) -> Path:
        """An empty folder for dataset repo ``repo_id`` (any previous content is removed)."""
        return self._fresh("dataset", repo_id)

    def has(self, repo_id: str, repo_type: str = "model") -> bool:
        folder = self._folder(repo_type, repo_id)
        return folder.is_dir() and any(folder.iterdir())

    def repos(self) -> Iterator[tuple[str, str, Path]]:
        """``(repo_type, repo_id, folder)`` for every repo in the tree."""
        for repo_type in REPO_TYPES:
            base = self.root / f"{repo_type}s"
            if not base.is_dir():
                continue
            for org in sorted(p for p in base.iterdir() if p.is_dir()):
                for name in sorted(p for p in org.iterdir() if p.is_dir()):
                    yield repo_type, f"{org.name}/{name.name}", name


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: object) -> None:
        pass  # requests are recorded by _record instead

    def _record(self, status: int, note: str = "") -> None:
        self.server.hub._record(self.command, self.path, status, note)

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
        note: str = "",
    ) -> None:
        # Recorded before the answer leaves: a client that has its answer also sees the request in
        # ``FakeHub.requests`` (recording after it lost that race on a loaded machine).
        self._record(status, note)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, data: object, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(data).encode(), headers)

    def _error(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None, note: str = ""
    ) -> None:
        extra = dict(headers or {})
        if code:
            extra["X-Error-Code"] = code
        extra["X-Error-Message"] = message
        self._send(status, json.dumps({"error": message}).encode(), extra, note=note or code or "")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # ------------------------------------------------------------------ routing

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        try:
            self._dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self._record(499, "client closed the connection")
        except Exception as exc:  # noqa: BLE001 - keep serving; the failure is visible in the log
            self._record(500, f"{type(exc).__name__}: {exc}")
            try:
                self._send(500, json.dumps({"error": str(exc)}).encode())
            except OSError:
                pass

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        segments = [unquote(s) for s in split.path.split("/")[1:]]
        query = parse_qs(split.query)
        if self.command == "POST":
            body = self._read_body()
            form = parse_qs(body.decode("utf-8", "replace"))
        else:
            form = {}
        hub = self.server.hub

        if len(segments) >= 4 and segments[0] == "api" and segments[1] in ("models", "datasets"):
            repo_type = segments[1][:-1]
            repo_id = f"{segments[2]}/{segments[3]}"
            rest = segments[4:]
            repo = hub.find(repo_type, repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository not found: {repo_type} {repo_id}")
                return
            if not rest and self.command in ("GET", "HEAD"):
                self._json(repo.info())
                return
            if rest[:1] == ["revision"] and len(rest) >= 2 and self.command in ("GET", "HEAD"):
                if not self._check_revision(repo, "/".join(rest[1:])):
                    return
                self._json(repo.info())
                return
            if rest[:1] == ["tree"] and len(rest) >= 2 and self.command == "GET":
                self._tree(repo, rest[1], "/".join(rest[2:]), query)
                return
            if rest[:1] == ["paths-info"] and len(rest) >= 2 and self.command == "POST":
                self._paths_info(repo, "/".join(rest[1:]), form)
                return
            if rest == ["refs"] and self.command == "GET":
                self._json(
                    {
                        "branches": [{"name": BRANCH, "ref": f"refs/heads/{BRANCH}", "targetCommit": repo.sha}],
                        "converts": [],
                        "tags": [],
                        "pullRequests": [],
                    }
                )
                return
        elif self.command in ("GET", "HEAD"):
            repo_type = "model"
            parts = segments
            if parts[:1] == ["datasets"]:
                repo_type, parts = "dataset", parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve":
                repo_id = f"{parts[0]}/{parts[1]}"
                repo = hub.find(repo_type, repo_id)
                if repo is None:
                    self._error(404, "RepoNotFound", f"Repository not found: {repo_type} {repo_id}")
                    return
                self._resolve(repo, parts[3], "/".join(parts[4:]))
                return
        self._error(404, None, f"Not served by the rehearsal's FakeHub: {self.command} {split.path}", note="UNHANDLED")

    # ------------------------------------------------------------------ endpoints

    def _check_revision(self, repo: Repo, revision: str) -> bool:
        if revision in (BRANCH, f"refs/heads/{BRANCH}", repo.sha):
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return False

    def _tree(self, repo: Repo, revision: str, path: str, query: dict[str, list[str]]) -> None:
        if not self._check_revision(repo, revision):
            return
        recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
        path = path.strip("/")
        folders = repo.folders()
        if path and path not in folders:
            headers = {"X-Repo-Commit": repo.sha}
            if path in repo.files:
                self._error(404, "EntryNotFound", f"{path} is a file, not a folder", headers)
            else:
                self._error(404, "EntryNotFound", f"{path} does not exist on {BRANCH}", headers)
            return
        prefix = f"{path}/" if path else ""
        names: list[str] = []
        for rel in sorted(folders | set(repo.files)):
            if not rel.startswith(prefix):
                continue
            tail = rel[len(prefix) :]
            if recursive or "/" not in tail:
                names.append(rel)
        # folders first, like the Hub
        names.sort(key=lambda rel: (rel in repo.files, rel))
        self._json([repo.entry(rel) for rel in names])

    def _paths_info(self, repo: Repo, revision: str, form: dict[str, list[str]]) -> None:
        if not self._check_revision(repo, revision):
            return
        known = repo.folders() | set(repo.files)
        wanted = [p.strip("/") for p in form.get("paths", [])]
        self._json([repo.entry(p) for p in wanted if p in known])

    def _resolve(self, repo: Repo, revision: str, rel: str) -> None:
        if not self._check_revision(repo, revision):
            return
        path = repo.files.get(rel)
        headers = {"X-Repo-Commit": repo.sha}
        if path is None:
            self._error(404, "EntryNotFound", f"Entry not found: {rel}", headers)
            return
        size = path.stat().st_size
        headers.update(
            {
                "ETag": f'"{repo.oids[rel]}"',
                "Accept-Ranges": "bytes",
                "Last-Modified": email.utils.formatdate(path.stat().st_mtime, usegmt=True),
            }
        )
        start, end = 0, size - 1
        status = 200
        spec = self.headers.get("Range")
        if spec:
            parsed = _parse_range(spec, size)
            if parsed is None:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(416, b"", headers, content_type="text/plain", note=rel)
                return
            start, end = parsed
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "GET" and length:
            with path.open("rb") as handle:
                handle.seek(start)
                left = length
                while left:
                    chunk = handle.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        self._record(status, rel)


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` -> inclusive (start, end); None if unsatisfiable."""
    unit, _, ranges = spec.partition("=")
    if unit.strip() != "bytes" or "," in ranges:
        return None
    first, _, last = ranges.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end:
        return None
    return start, end


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: FakeHub


@dataclass(frozen=True)
class Request:
    """One request the FakeHub answered."""

    method: str
    path: str
    status: int
    note: str = ""


class FakeHub:
    """Serve one or more :class:`HubTree` folders on ``http://127.0.0.1:<port>``.

    Trees are searched in order; the first one that holds a repo serves it.  Use as a context
    manager, or call :meth:`start` / :meth:`stop`::

        with FakeHub([HubTree(path)]) as hub:
            os.environ["HF_ENDPOINT"] = hub.url
    """

    def __init__(self, trees: Iterable[HubTree | Path | str], port: int = 0, log_file: Path | None = None):
        self.trees = [t if isinstance(t, HubTree) else HubTree(t) for t in trees]
        self.port = port
        self.log_file = Path(log_file) if log_file else None
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.rescan()

    def rescan(self) -> None:
        """Re-read the trees (after a builder wrote new files)."""
        repos: dict[tuple[str, str], Repo] = {}
        for tree in self.trees:
            for repo_type, repo_id, folder in tree.repos():
                repos.setdefault((repo_type, repo_id), Repo.scan(repo_type, repo_id, folder))
        self._repos = repos

    def find(self, repo_type: str, repo_id: str) -> Repo | None:
        return self._repos.get((repo_type, repo_id))

    @property
    def repo_ids(self) -> list[tuple[str, str]]:
        return sorted(self._repos)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _record(self, method: str, path: str, status: int, note: str) -> None:
        request = Request(method, path, status, note)
        with self._lock:
            self.requests.append(request)
            if self.log_file is not None:
                with self.log_file.open("a", encoding="utf-8") as handle:
                    handle.write(f"{time.strftime('%H:%M:%S')} {status} {method} {path} {note}".rstrip() + "\n")

    def unhandled(self) -> list[Request]:
        """Requests no endpoint of this emulation answered (gaps to fix)."""
        return [r for r in self.requests if r.note == "UNHANDLED" or r.status >= 500]

    def start(self) -> FakeHub:
        if self._server is not None:
            return self
        if self.log_file is not None:
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.hub = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="fakehub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Variables that would stop the clients from talking to the FakeHub.
OFFLINE_VARS = (
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_CACHE",
    "HF_DATASETS_CACHE",
    "HUGGINGFACE_HUB_CACHE",
    "TRANSFORMERS_CACHE",
    "HF_XET_CACHE",
)


def client_env(base: dict[str, str], hub_url: str, hf_home: Path) -> dict[str, str]:
    """``base`` with the Hub client variables set to use ``hub_url`` and ``hf_home`` only."""
    env = {k: v for k, v in base.items() if k not in OFFLINE_VARS}
    env["HF_ENDPOINT"] = hub_url
    env["HF_HOME"] = str(hf_home)
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    return env


def wipe(path: Path) -> Path:
    """Remove ``path`` if it exists and create it empty."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


__all__ = ["OFFLINE_VARS", "FakeHub", "HubTree", "Repo", "Request", "client_env", "git_blob_oid", "wipe"]
