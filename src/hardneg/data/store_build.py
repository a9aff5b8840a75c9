"""Building a corpus store (see data/store.py): one pass over corpus.jsonl that validates, writes the
Arrow file in fixed-size batches and hashes the bytes read; then the id index. ``open_corpus``
publishes a build (or finds the cached one) and is what loading calls.

The layout (``store.BATCH_ROWS``, ``store.SCHEMA``, ``store.id_hash``, ``store.FORMAT``) is read from
the store module at call time, so it is defined once, beside the reader that depends on it."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import weakref
from array import array
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from hardneg.core.errors import DataError, HardnegError
from hardneg.data import store
from hardneg.data.parsing import Document, Problems, jsonl_records, record_id, string_field
from hardneg.data.store import fsync_dir, fsync_file  # fsync_file: also imported from here by callers


class _Writer:
    """Appends documents in fixed-size record batches and remembers each id's hash."""

    def __init__(self, path: Path):
        self.path, self.dropped = path, set()  # dropped: rows of duplicates, when validating
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = pa.ipc.new_file(self.sink, store.SCHEMA)
        self.columns: tuple[list, list, list] = ([], [], [])
        self.hashes = array("Q")
        self.count = 0

    def add(self, doc_id: str, title: str, text: str, hashed: int) -> None:
        ids, titles, texts = self.columns
        ids.append(doc_id)
        titles.append(title)
        texts.append(text)
        self.hashes.append(hashed)
        self.count += 1
        if len(self.columns[0]) == store.BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.columns[0]:
            arrays = [pa.array(column, type=pa.string()) for column in self.columns]
            self.writer.write_batch(pa.record_batch(arrays, schema=store.SCHEMA))
            self.columns = ([], [], [])

    def close(self) -> None:
        self.flush()
        self.writer.close()
        self.sink.close()


def _stream(path: Path, writer: _Writer, found: list[DataError], digest) -> None:
    """One pass over corpus.jsonl: write each valid document, and report duplicates against the
    first line that used the id; ``found`` gets every problem, sorted by line afterwards."""
    collect = Problems(strict=False, found=found)
    record_hashes, record_lines, record_rows = array("Q"), array("Q"), array("q")
    unwritten: dict[int, str] = {}  # line -> id, for the few records with a valid id but bad fields
    for number, record in jsonl_records(path, collect, digest):
        doc_id = record_id(path, number, record, collect)
        if doc_id is None:
            continue
        hashed = store.id_hash(doc_id)
        record_hashes.append(hashed)
        record_lines.append(number)
        text, title = record.get("text"), record.get("title", "")
        if not (type(text) is str and type(title) is str):  # the common case skips the checks below
            text = string_field(path, number, record, "text", collect, required=True)
            title = string_field(path, number, record, "title", collect, required=False)
        if text is not None and title is not None:
            record_rows.append(writer.count)
            writer.add(doc_id, title.strip(), text, hashed)
        else:
            record_rows.append(-1)
            unwritten[number] = doc_id
    writer.flush()
    _report_duplicates(path, writer, record_hashes, record_lines, record_rows, unwritten, found)
    found.sort(key=lambda problem: (problem.line is None, problem.line or 0))


def _report_duplicates(path, writer: _Writer, hashes, lines, rows, unwritten, found: list[DataError]) -> None:
    hashes = np.frombuffer(hashes, dtype=np.uint64)
    order = np.argsort(hashes, kind="stable")  # stable: equal hashes stay in line order
    sorted_hashes = hashes[order]
    repeated = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if not len(repeated):
        return
    writer.close()
    column = pa.ipc.open_file(pa.memory_map(str(writer.path))).read_all().column(0)
    lines, rows = np.frombuffer(lines, dtype=np.uint64), np.frombuffer(rows, dtype=np.int64)

    def id_of(record: int) -> str:
        return column[int(rows[record])].as_py() if rows[record] >= 0 else unwritten[int(lines[record])]

    groups = np.split(order, np.flatnonzero(np.diff(sorted_hashes)) + 1)
    duplicate_lines: dict[int, str] = {}
    for group in (g for g in groups if len(g) > 1):
        first: dict[str, int] = {}
        for record in group:
            doc_id, line = id_of(record), int(lines[record])
            if doc_id in first:
                duplicate_lines[line] = f"duplicate _id {doc_id!r} (first on line {first[doc_id]})"
                writer.dropped.add(int(rows[record]))
            else:
                first[doc_id] = line
    found[:] = [p for p in found if p.line not in duplicate_lines]  # a repeat is reported as one, as before
    found.extend(DataError(path, line, message) for line, message in duplicate_lines.items())
    writer.dropped.discard(-1)  # a repeat with bad fields was never written


def _write_index(folder: Path, hashes: np.ndarray) -> None:
    order = np.argsort(hashes, kind="stable")
    np.save(folder / "id_hashes.npy", hashes[order])
    np.save(folder / "id_rows.npy", order.astype(np.int64))


def _drop_rows(folder: Path, dropped: set[int]) -> np.ndarray:
    """Rewrite the store without the duplicate rows (only a corpus with problems gets here)."""
    arrow = folder / "corpus.arrow"
    table = pa.ipc.open_file(pa.memory_map(str(arrow))).read_all()
    keep = np.ones(len(table), dtype=bool)
    keep[sorted(dropped)] = False
    table = table.filter(pa.array(keep))
    staged = folder / "corpus.arrow.new"
    with pa.OSFile(str(staged), "wb") as sink, pa.ipc.new_file(sink, store.SCHEMA) as writer:
        writer.write_table(table, max_chunksize=store.BATCH_ROWS)
    os.replace(staged, arrow)
    return np.array([store.id_hash(doc_id) for doc_id in table.column(0).to_pylist()], dtype=np.uint64)


JSON_SCHEMA = pa.schema([("_id", pa.string()), ("title", pa.string()), ("text", pa.string())])
JSON_BLOCK_BYTES = 8 << 20


class _Changed(Exception):
    """The fast path met something only the validating path can judge (or the file changed)."""


def _hash_file(path: Path, out: dict) -> None:
    """The content hash and the line count, read in a thread beside the parser (blake2b releases
    the GIL on large buffers)."""
    digest, lines, last = hashlib.blake2b(digest_size=20), 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(16 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    out.update(key=digest.hexdigest(), lines=lines + (last != b"\n"))


def _exact_batches(reader, rows: int):
    """The parser's batches re-cut into batches of exactly ``rows`` rows (the store's layout)."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in reader:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending).combine_chunks()
            yield table.slice(0, rows).to_batches()[0]
            rest = table.slice(rows)
            pending, held = rest.to_batches(), rest.num_rows
    if held:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]


def _fast_build(path: Path, folder: Path) -> tuple[str, np.ndarray]:
    """Arrow's C++ JSON reader in place of a Python loop, for a corpus with nothing to report: every
    line one object, ``_id`` and ``text`` strings, ``title`` a string or absent, valid UTF-8, no
    repeated id. Anything else raises ``_Changed`` and the validating path decides, so both paths
    accept exactly the same files and store the same rows."""
    import threading

    import pyarrow.json as pa_json

    before = path.stat()
    hashed: dict = {}
    hasher = threading.Thread(target=_hash_file, args=(path, hashed))
    hasher.start()
    options = pa_json.ParseOptions(explicit_schema=JSON_SCHEMA, unexpected_field_behavior="ignore")
    hashes = array("Q")
    try:
        reader = pa_json.open_json(
            path, read_options=pa_json.ReadOptions(block_size=JSON_BLOCK_BYTES), parse_options=options
        )
        with (
            pa.OSFile(str(folder / "corpus.arrow"), "wb") as sink,
            pa.ipc.new_file(sink, store.SCHEMA) as writer,
        ):
            for batch in _exact_batches(reader, store.BATCH_ROWS):
                batch.validate(full=True)  # UTF-8 included
                ids, titles, texts = batch.columns
                empty_id = pa.compute.any(pa.compute.equal(pa.compute.binary_length(ids), 0)).as_py()
                if ids.null_count or texts.null_count or empty_id:
                    raise _Changed
                doc_ids = ids.to_pylist()
                hashes.extend(store.id_hash(doc_id) for doc_id in doc_ids)
                stripped = pa.array([(title or "").strip() for title in titles.to_pylist()], type=pa.string())
                writer.write_batch(pa.record_batch([ids, stripped, texts], schema=store.SCHEMA))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise _Changed from exc
    finally:
        hasher.join()
    values = np.frombuffer(hashes, dtype=np.uint64)
    ordered = np.sort(values)
    after = path.stat()
    edited = (before.st_size, before.st_mtime_ns, before.st_ctime_ns) != (
        after.st_size,
        after.st_mtime_ns,
        after.st_ctime_ns,
    )
    if (
        not len(values)
        or len(values) != hashed.get("lines")
        or bool((ordered[1:] == ordered[:-1]).any())
        or edited
    ):
        raise _Changed  # blank lines, several objects on a line, a repeated id (or a hash collision), an edit
    return hashed["key"], values


def build_store(path: Path, folder: Path, problems: Problems) -> tuple[str, bool]:
    """Write the store for ``path`` into ``folder``: the content hash of the bytes read, and False
    when the corpus has problems (then the store holds its valid documents, for validation to
    count, and must not be cached)."""
    try:
        return _build(path, folder, problems)
    finally:  # Arrow's allocator keeps a parser's freed blocks for reuse: without this, a grid that
        pa.default_memory_pool().release_unused()  # builds a store per test set carries each build's along


def _build(path: Path, folder: Path, problems: Problems) -> tuple[str, bool]:
    try:
        key, hashes = _fast_build(path, folder)
    except _Changed:
        pass
    else:
        return _finish(path, folder, key, hashes, valid=True)
    writer = _Writer(folder / "corpus.arrow")
    found: list[DataError] = []
    digest = hashlib.blake2b(digest_size=20)
    try:
        _stream(path, writer, found, digest)
    finally:
        if not writer.sink.closed:
            writer.close()
    for problem in found:
        problems.add(problem.path, problem.line, problem.message)  # strict: raises the first
    if found and writer.dropped:
        hashes = _drop_rows(folder, writer.dropped)
    else:
        hashes = np.frombuffer(writer.hashes, dtype=np.uint64)
    return _finish(path, folder, digest.hexdigest(), hashes, valid=not found)


def _finish(path: Path, folder: Path, key: str, hashes: np.ndarray, valid: bool) -> tuple[str, bool]:
    _write_index(folder, hashes)
    meta = {
        "format": store.FORMAT,
        "content": key,
        "documents": len(hashes),
        "batch_rows": store.BATCH_ROWS,
        "source": str(path),
        "source_bytes": path.stat().st_size,
        "valid": valid,
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return key, valid


def _remove_stale(root: Path) -> None:
    """Temporary folders left by killed builds of this host whose process is gone."""
    host = socket.gethostname()
    for leftover in root.glob(f".tmp-{host}-*"):
        try:
            pid = int(leftover.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def open_corpus(path: Path, problems: Problems) -> Mapping[str, Document]:
    """The store for ``path``: the cached one for its content, or one built (and validated) now."""
    path = Path(path)
    if not path.is_file():
        problems.add(path, None, "file not found")
        return {}
    root = store.store_root()
    content, record = store.known_content(path)
    if content is not None and (root / f"{content}-v{store.FORMAT}" / "meta.json").is_file():
        return store.CorpusStore(root / f"{content}-v{store.FORMAT}", path)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale(root)
    partial = Path(tempfile.mkdtemp(prefix=f".tmp-{socket.gethostname()}-{os.getpid()}-", dir=root))
    folder = root / "(being built)"
    try:
        content, valid = build_store(path, partial, problems)
        folder = root / f"{content}-v{store.FORMAT}"
        if not valid:
            scratch = store.CorpusStore(partial, path, scratch=True)
            weakref.finalize(scratch, shutil.rmtree, partial, ignore_errors=True)  # gone with the store
            return scratch
        for file in partial.iterdir():
            fsync_file(file)
        fsync_dir(partial)
        if (folder / "meta.json").is_file():  # the same content, built before (a touched file) or meanwhile
            shutil.rmtree(partial, ignore_errors=True)
        else:
            try:
                os.rename(partial, folder)
            except OSError as exc:  # another process published the same content first
                if not (folder / "meta.json").is_file():
                    raise exc
                shutil.rmtree(partial, ignore_errors=True)
            fsync_dir(root)
        store.remember_content(record, content)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        reason = "no space left on the device" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise HardnegError(f"{folder}: cannot build the corpus store for {path} ({reason})") from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return store.CorpusStore(folder, path)
