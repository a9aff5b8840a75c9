"""A corpus kept on disk as a memory-mapped Arrow file instead of a dict of Python objects.

Millions of documents as ``Document`` objects cost ~6x the size of corpus.jsonl in memory; the
store costs the pages a run actually reads. It is built once per corpus content under
``$HARDNEG_CACHE/corpus/<content hash>/`` (validating while it streams over the file) and holds:

- ``corpus.arrow``: Arrow IPC file, columns ``_id``, ``title`` (stripped), ``text``, in file order,
  in record batches of ``BATCH_ROWS`` rows (so row r sits in batch r // BATCH_ROWS);
- ``id_hashes.npy`` / ``id_rows.npy``: the ids' 64-bit hashes, sorted, and their rows: an id is
  found by binary search and checked against the ``_id`` column (a hash collision costs a step);
- ``meta.json``: counts, the batch size and the content hash;
- ``passage_keys.npy``, added by the first mining run: each document's 16-byte passage
  fingerprint (see ``mining.select.PassageKeys``), so mining on a cached index compares candidates
  with their positive without reading the candidates' texts.

Which content a corpus.jsonl holds is the blake2b hash of the bytes the build read (so the store
and its name always describe the same bytes). To skip reading the file on every load, a record
``by-path/<hash of the real path>.json`` keeps the file's (size, mtime_ns, ctime_ns, inode, device)
as stat'ed before that read; the hash is reused only while all five match and the file was last
modified more than ``RACY_SECONDS`` before the read began (an edit in the same clock tick would
otherwise go unseen, as in git's "racy" index). ctime cannot be set back by a user, so an edit that
restores size and mtime still changes it. Any mismatch means building again (a file only touched
ends up with the same hash, and the existing store is kept): a changed corpus is never served from
an old store.

A build writes into a ``.tmp-*`` folder beside the final one, fsyncs every file and renames the
folder into place: a killed or disk-full build leaves at most a temporary folder that no reader
trusts (and that the next build on this host removes once its process is gone).

Building and publishing (``open_corpus``) live in store_build.py, which imports this module for the
layout it writes; this module does not import store_build (but for the ``open_corpus`` alias kept
for older callers, see ``__getattr__``), so loading either never needs the other half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from hardneg.core.errors import HardnegError
from hardneg.core.io import cache_root, write_json
from hardneg.data.parsing import Document, join_title

FORMAT = 1
BATCH_ROWS = 8192
RACY_SECONDS = 2.0
SCHEMA = pa.schema([("_id", pa.string()), ("title", pa.string()), ("text", pa.string())])


def store_root() -> Path:
    return cache_root() / "corpus"


def id_hash(doc_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little")


def _stat_fields(stat: os.stat_result) -> dict[str, int]:
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "ino": stat.st_ino,
        "dev": stat.st_dev,
    }


def _record_file(real: str) -> Path:
    return store_root() / "by-path" / f"{hashlib.blake2b(real.encode(), digest_size=16).hexdigest()}.json"


def known_content(path: Path) -> tuple[str | None, dict]:
    """The file's content hash from its stat record when that is still valid (see the module doc),
    else None; and the record to write once the file has been read and hashed again."""
    real = str(Path(path).resolve())
    stat = _stat_fields(os.stat(real))
    fresh = {"path": real, "stat": stat, "checked_ns": time.time_ns(), "format": FORMAT}
    try:
        record = json.loads(_record_file(real).read_text())
        if (
            record["path"] == real
            and record["stat"] == stat
            and record["format"] == FORMAT
            and record["checked_ns"] - stat["mtime_ns"] > RACY_SECONDS * 1e9
        ):
            return record["content"], fresh
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None, fresh


def remember_content(record: dict, content: str) -> None:
    try:
        write_json(_record_file(record["path"]), {**record, "content": content})
    except OSError:  # a read-only cache only costs reading the file again next time
        pass


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IdColumn(Sequence):
    """The ``_id`` column as a read-only sequence: what a retriever maps its row numbers through."""

    def __init__(self, store: CorpusStore):
        self._store = store

    def __len__(self) -> int:
        return len(self._store)

    def __getitem__(self, row: int) -> str:
        return self._store._cell(int(row), 0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._store)

    def index(self, doc_id, start: int = 0, stop: int | None = None) -> int:
        row = self._store.row(doc_id)
        if row is None or row < start or (stop is not None and row >= stop):
            raise ValueError(f"{doc_id!r} is not in the corpus")
        return row

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._store

    def take(self, rows: Iterable[int]) -> list[str]:
        rows = np.asarray(rows, dtype=np.int64)
        return self._store._table.column(0).take(pa.array(rows)).to_pylist() if len(rows) else []


class TextColumn(Sequence):
    """Every document's indexed text (title + text, or the text alone) fetched by row: what an
    encoder reads shard by shard instead of holding every text."""

    def __init__(self, store: CorpusStore, use_title: bool):
        self._store, self._use_title = store, use_title

    def __len__(self) -> int:
        return len(self._store)

    def __getitem__(self, row: int) -> str:
        return self.take([row])[0]

    def take(self, rows: Iterable[int]) -> list[str]:
        indices = pa.array(np.asarray(rows, dtype=np.int64))
        texts = self._store._table.column(2).take(indices).to_pylist()
        if not self._use_title:
            return texts
        titles = self._store._table.column(1).take(indices).to_pylist()
        return [join_title(title, text) for title, text in zip(titles, texts)]

    def lengths(self) -> list[int]:
        """Each text's length in characters, read batch by batch."""
        return [len(text) for text in self._store.iter_texts(self._use_title)]


class _Values:
    def __init__(self, store: CorpusStore, pairs: bool):
        self._store, self._pairs = store, pairs

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self):
        for ids, titles, texts in self._store.batches():
            if self._pairs:
                yield from ((i, Document(a, b)) for i, a, b in zip(ids, titles, texts))
            else:
                yield from (Document(a, b) for a, b in zip(titles, texts))


class CorpusStore(Mapping):
    """Document id -> ``Document``, read from the memory-mapped store; ids iterate in file order.

    Random access (``store[doc_id]``) maps in the pages of that row only; ``batches()`` and
    ``iter_texts()`` read batch by batch with ordinary reads, so a pass over every text does not
    leave the whole file resident in the process.
    """

    def __init__(self, folder: Path, source: Path, scratch: bool = False):
        self.folder, self.source, self.scratch = Path(folder), Path(source), scratch
        meta = json.loads((self.folder / "meta.json").read_text())
        self.content_key: str = meta["content"]
        self._rows_per_batch: int = meta["batch_rows"]
        self._length: int = meta["documents"]
        self.source_bytes: int = meta.get("source_bytes", 0)
        self._arrow = str(self.folder / "corpus.arrow")
        self._reader = pa.ipc.open_file(pa.memory_map(self._arrow))
        self._table = self._reader.read_all()  # zero-copy over the map
        self._batches = [self._reader.get_batch(i) for i in range(self._reader.num_record_batches)]
        self._hashes = np.load(self.folder / "id_hashes.npy", mmap_mode="r")
        self._rows = np.load(self.folder / "id_rows.npy", mmap_mode="r")
        self._passage_keys: np.ndarray | None = None

    @property
    def ids(self) -> IdColumn:
        """The ``_id`` column, made on each access: a store that held its own column would be a
        reference cycle, freed only by the next full garbage collection, not by its last user."""
        return IdColumn(self)

    def __reduce__(self):
        if self.scratch:
            raise HardnegError(
                f"{self.source}: a corpus with problems is not kept in the store, nor sent elsewhere"
            )
        return (CorpusStore, (self.folder, self.source))

    def __repr__(self) -> str:
        return f"CorpusStore({self.source}, {self._length} documents)"

    def _cell(self, row: int, column: int) -> str:
        if not 0 <= row < self._length:
            raise IndexError(row)
        batch, offset = divmod(row, self._rows_per_batch)
        return self._batches[batch].column(column)[offset].as_py()

    def row(self, doc_id: str) -> int | None:
        """The id's row, or None: binary search on the hash, confirmed against the id itself."""
        if not isinstance(doc_id, str):
            return None
        target = id_hash(doc_id)
        position = int(np.searchsorted(self._hashes, target))
        while position < len(self._hashes) and int(self._hashes[position]) == target:
            candidate = int(self._rows[position])
            if self._cell(candidate, 0) == doc_id:
                return candidate
            position += 1
        return None

    def rows_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        rows = []
        for doc_id in doc_ids:
            row = self.row(doc_id)
            if row is None:
                raise KeyError(doc_id)
            rows.append(row)
        return np.asarray(rows, dtype=np.int64)

    def __getitem__(self, doc_id: str) -> Document:
        row = self.row(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return Document(title=self._cell(row, 1), text=self._cell(row, 2))

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.row(doc_id) is not None

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[str]:
        for ids, _, _ in self.batches(columns=(0,)):
            yield from ids

    def values(self):  # type: ignore[override]
        return _Values(self, pairs=False)

    def items(self):  # type: ignore[override]
        return _Values(self, pairs=True)

    def batches(self, columns: tuple[int, ...] = (0, 1, 2)) -> Iterator[tuple[list, list, list]]:
        """(ids, titles, texts) a record batch at a time, read from the file rather than the map;
        columns left out come back as empty lists."""
        with pa.OSFile(self._arrow) as handle:
            reader = pa.ipc.open_file(handle)
            for number in range(reader.num_record_batches):
                batch = reader.get_batch(number)
                yield tuple(  # type: ignore[misc]
                    batch.column(c).to_pylist() if c in columns else [] for c in range(3)
                )

    def passage_key(self, doc_id: str) -> bytes:
        """The document's passage fingerprint, from ``passage_keys.npy`` (built on first use)."""
        if self._passage_keys is None:
            self._passage_keys = passage_keys(self)
        row = self.row(doc_id)
        if row is None:
            raise KeyError(doc_id)
        return self._passage_keys[row].tobytes()

    def texts(self, use_title: bool = True) -> TextColumn:
        return TextColumn(self, use_title)

    def iter_texts(self, use_title: bool = True) -> Iterator[str]:
        """Every document's indexed text in file order: title + ' ' + text, or the text alone."""
        for _, titles, texts in self.batches(columns=(1, 2) if use_title else (2,)):
            if use_title:
                yield from (join_title(title, text) for title, text in zip(titles, texts))
            else:
                yield from texts


def passage_keys(corpus: CorpusStore) -> np.ndarray:
    """Every document's passage fingerprint as a (documents, 16) uint8 array, memory-mapped from
    ``passage_keys.npy`` in the store; computed in one streamed pass when missing and saved
    atomically (a read-only cache keeps them in memory for this process only)."""
    from hardneg.data.records import passage_key  # deferred: records loads pydantic, reading needs none

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
