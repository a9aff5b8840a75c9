"""Building a corpus store (see data/store.py): one pass over corpus.jsonl that validates, writes the
Arrow file in fixed-size batches and hashes the bytes read; then the id index."""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from pathlib import Path

import numpy as np
import pyarrow as pa

from hardneg.data import store
from hardneg.data.beir import Problems, join_title, _jsonl_records, _record_id, _string_field
from hardneg.data.records import passage_key
from hardneg.errors import DataError


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    for number, record in _jsonl_records(path, collect, digest):
        doc_id = _record_id(path, number, record, collect)
        if doc_id is None:
            continue
        hashed = store.id_hash(doc_id)
        record_hashes.append(hashed)
        record_lines.append(number)
        text, title = record.get("text"), record.get("title", "")
        if not (type(text) is str and type(title) is str):  # the common case skips the checks below
            text = _string_field(path, number, record, "text", collect, required=True)
            title = _string_field(path, number, record, "title", collect, required=False)
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


def build_store(path: Path, folder: Path, problems: Problems) -> tuple[str, bool]:
    """Write the store for ``path`` into ``folder``: the content hash of the bytes read, and False
    when the corpus has problems (then the store holds its valid documents, for validation to
    count, and must not be cached)."""
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
    if found:
        hashes = _drop_rows(folder, writer.dropped) if writer.dropped else np.frombuffer(writer.hashes, np.uint64)
        documents = len(hashes)
    else:
        hashes, documents = np.frombuffer(writer.hashes, dtype=np.uint64), writer.count
    _write_index(folder, hashes)
    key = digest.hexdigest()
    meta = {"format": store.FORMAT, "content": key, "documents": documents, "batch_rows": store.BATCH_ROWS,
            "source": str(path), "source_bytes": path.stat().st_size, "valid": not found}  # fmt: skip
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return key, not found


def passage_keys(corpus: store.CorpusStore) -> np.ndarray:
    """Every document's passage fingerprint as a (documents, 16) uint8 array, memory-mapped from
    ``passage_keys.npy`` in the store; computed in one streamed pass when missing and saved
    atomically (a read-only cache keeps them in memory for this process only)."""
    path = corpus.folder / "passage_keys.npy"
    try:
        keys = np.load(path, mmap_mode="r")
        if keys.shape == (len(corpus), 16):
            return keys
    except (OSError, ValueError):
        pass
    keys = np.empty((len(corpus), 16), dtype=np.uint8)
    row = 0
    for _, titles, texts in corpus.batches(columns=(1, 2)):
        for title, text in zip(titles, texts):
            keys[row] = np.frombuffer(passage_key(join_title(title, text)), dtype=np.uint8)
            row += 1
    staged = path.with_name(f".passage_keys.{os.getpid()}.npy")
    try:
        np.save(staged, keys)
        fsync_file(staged)
        os.replace(staged, path)
    except OSError:
        staged.unlink(missing_ok=True)
    return keys
