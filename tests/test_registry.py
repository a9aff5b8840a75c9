from __future__ import annotations

import http.server
import io
import threading
import zipfile
from pathlib import Path

import pytest
from helpers import write_beir
from typer.testing import CliRunner

from hardneg.cli import app
from hardneg.data import registry
from hardneg.data.registry import data_roots, list_datasets, load_dataset, resolve_dataset
from hardneg.core.errors import HardnegError

runner = CliRunner()


@pytest.fixture
def no_shared(monkeypatch, tmp_path):
    """Pretend ../shared does not exist, so the cache is the only default root."""
    monkeypatch.setattr(registry, "SHARED_ROOT", tmp_path / "no-shared")


def test_root_precedence(monkeypatch, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setattr(registry, "SHARED_ROOT", shared)
    cache = Path(registry.os.environ["HARDNEG_CACHE"]) / "datasets"
    assert data_roots() == registry.DataRoots(search=(shared, cache), download=cache)
    monkeypatch.setenv("HARDNEG_DATA", str(tmp_path / "env"))
    assert data_roots().search == (tmp_path / "env",)
    assert data_roots(tmp_path / "flag") == registry.DataRoots((tmp_path / "flag",), tmp_path / "flag")


def test_name_and_path_resolve_to_the_same_folder(tmp_path):
    folder = write_beir(tmp_path / "root" / "tiny")
    assert resolve_dataset("tiny", data_root=tmp_path / "root") == folder
    assert resolve_dataset(str(folder)) == folder


def test_unknown_name_is_a_clear_error(tmp_path):
    with pytest.raises(HardnegError, match="unknown dataset 'nope'"):
        resolve_dataset("nope", data_root=tmp_path)


def test_list_shows_local_and_downloadable(tmp_path, no_shared):
    write_beir(tmp_path / "root" / "scifact")
    entries = {e.name: e for e in list_datasets(tmp_path / "root")}
    assert entries["scifact"].status == "local"
    assert entries["nfcorpus"].status == "downloadable"


def _zip_bytes(folder: Path, prefix: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for file in folder.rglob("*"):
            if file.is_file():
                bundle.write(file, f"{prefix}/{file.relative_to(folder)}")
        for name, data in (extra or {}).items():
            bundle.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def server():
    """A loopback HTTP server whose routes the test fills in; records every request path."""
    routes: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = routes.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)  # quick to shut down
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", routes, hits
    httpd.shutdown()
    httpd.server_close()


def test_downloads_a_beir_name_once_and_unpacks_atomically(tmp_path, server, monkeypatch, no_shared):
    base, routes, hits = server
    routes["/scifact.zip"] = _zip_bytes(write_beir(tmp_path / "src"), "scifact")
    monkeypatch.setenv("HARDNEG_BEIR_URL", base + "/{name}.zip")
    root = tmp_path / "root"
    dataset = load_dataset("scifact", data_root=root)
    assert dataset.path == root / "scifact"
    assert dataset.counts()["test"] == {"queries": 2, "judgments": 3}
    assert sorted(p.name for p in root.iterdir()) == ["scifact"]  # no staging leftovers
    load_dataset("scifact", data_root=root)
    assert hits == ["/scifact.zip"]


def test_download_goes_to_the_cache_when_no_root_is_given(tmp_path, server, monkeypatch, no_shared):
    base, routes, _ = server
    routes["/nfcorpus.zip"] = _zip_bytes(write_beir(tmp_path / "src"), "nfcorpus")
    monkeypatch.setenv("HARDNEG_BEIR_URL", base + "/{name}.zip")
    path = resolve_dataset("nfcorpus")
    assert path == Path(registry.os.environ["HARDNEG_CACHE"]) / "datasets" / "nfcorpus"


@pytest.mark.parametrize(
    ("body", "message"),
    [(None, "HTTP 404"), (b"this is not a zip", "not a valid zip archive")],
)
def test_failed_download_leaves_nothing_behind(tmp_path, server, monkeypatch, body, message):
    base, routes, _ = server
    if body is not None:
        routes["/fiqa.zip"] = body
    monkeypatch.setenv("HARDNEG_BEIR_URL", base + "/{name}.zip")
    root = tmp_path / "root"
    with pytest.raises(HardnegError, match=message):
        resolve_dataset("fiqa", data_root=root)
    assert list(root.iterdir()) == []


def test_archive_escaping_its_folder_is_refused(tmp_path, server, monkeypatch):
    base, routes, _ = server
    routes["/arguana.zip"] = _zip_bytes(write_beir(tmp_path / "src"), "arguana", {"../../evil.txt": b"x"})
    monkeypatch.setenv("HARDNEG_BEIR_URL", base + "/{name}.zip")
    with pytest.raises(HardnegError, match="escapes its folder"):
        resolve_dataset("arguana", data_root=tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


def test_unreachable_server_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HARDNEG_BEIR_URL", "http://127.0.0.1:9/{name}.zip")
    result = runner.invoke(app, ["data", "show", "quora", "--data-root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: http://127.0.0.1:9/quora.zip: download failed")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_list_and_show(tmp_path):
    write_beir(tmp_path / "tiny")
    listed = runner.invoke(app, ["data", "list", "--data-root", str(tmp_path)])
    assert listed.exit_code == 0 and "tiny" in listed.stdout and "downloadable" in listed.stdout
    shown = runner.invoke(app, ["data", "show", "tiny", "--data-root", str(tmp_path)])
    assert shown.exit_code == 0, shown.output
    assert "train" in shown.stdout and "documents: 5" in shown.stdout
