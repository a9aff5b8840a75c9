"""BEIR-layout datasets: one parser that both validates (collecting every problem) and loads.

A folder holds ``corpus.jsonl`` ({"_id", "title", "text"}), ``queries.jsonl`` ({"_id", "text"},
every split) and ``qrels/<split>.tsv`` (header ``query-id<TAB>corpus-id<TAB>score``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Container, Iterator, Mapping

from hardneg.core.errors import DataError, HardnegError
from hardneg.data.parsing import (
    Document,
    Problems,
    join_title,  # noqa: F401  (re-exported: it was defined here)
    jsonl_records,
    record_id,
    string_field,
)

Qrels = dict[str, dict[str, int]]
"""query id -> document id -> graded relevance score."""

QRELS_HEADER = ("query-id", "corpus-id", "score")

log = logging.getLogger(__name__)
_warned: set[tuple[str, int]] = set()
"""(qrels file, count) already warned about in this process: a grid loads a dataset many times."""


@dataclass
class BeirDataset:
    path: Path
    corpus: Mapping[str, Document]
    """A ``CorpusStore`` (memory-mapped, see data/store.py) when loaded; any mapping will do."""
    queries: dict[str, str]
    qrels: dict[str, Qrels]
    unretrievable: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per split, the (query id, document id) judgments whose document is not in the corpus. They
    stay in ``qrels``: relevant but never retrievable, as BEIR and pytrec_eval count them (the
    official ArguAna release has 5)."""

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def splits(self) -> list[str]:
        return sorted(self.qrels)

    def split_qrels(self, split: str) -> Qrels:
        if split not in self.qrels:
            available = ", ".join(self.splits) or "none"
            raise HardnegError(
                f"{self.path / 'qrels' / (split + '.tsv')}: no such split (available: {available})"
            )
        return self.qrels[split]

    def split_queries(self, split: str) -> dict[str, str]:
        """The judged queries of a split, in qrels order."""
        return {qid: self.queries[qid] for qid in self.split_qrels(split)}

    def judged_documents(self, query_id: str) -> dict[str, int]:
        """Every judgment of a query across all splits, each document at its highest grade (mining
        must never use these as negatives: a 0 in one split does not unjudge a positive of another)."""
        merged: dict[str, int] = {}
        for qrels in self.qrels.values():
            for doc_id, grade in qrels.get(query_id, {}).items():
                merged[doc_id] = max(grade, merged.get(doc_id, grade))
        return merged

    def counts(self) -> dict[str, dict[str, int]]:
        """Per split: judged queries and judgments; plus the corpus and query totals."""
        summary = {"all": {"documents": len(self.corpus), "queries": len(self.queries)}}
        for split in self.splits:
            qrels = self.qrels[split]
            summary[split] = {
                "queries": len(qrels),
                "judgments": sum(len(docs) for docs in qrels.values()),
            }
            if self.unretrievable.get(split):
                summary[split]["not_in_corpus"] = len(self.unretrievable[split])
        return summary


def _records_by_id(path: Path, problems: Problems) -> Iterator[tuple[int, str, dict]]:
    """Records with a valid ``_id`` seen for the first time; a repeat is reported against the first."""
    first_line: dict[str, int] = {}
    for number, record in jsonl_records(path, problems):
        rid = record_id(path, number, record, problems)
        if rid is None:
            continue
        if rid in first_line:
            problems.add(path, number, f"duplicate _id {rid!r} (first on line {first_line[rid]})")
            continue
        first_line[rid] = number
        yield number, rid, record


def read_corpus(path: Path, problems: Problems) -> dict[str, Document]:
    """The whole corpus as Python objects (small corpora, tests); loading uses ``open_corpus``."""
    corpus: dict[str, Document] = {}
    for number, doc_id, record in _records_by_id(path, problems):
        text = string_field(path, number, record, "text", problems, required=True)
        title = string_field(path, number, record, "title", problems, required=False)
        if text is not None and title is not None:
            corpus[doc_id] = Document(title=title.strip(), text=text)
    return corpus


def read_queries(path: Path, problems: Problems) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, query_id, record in _records_by_id(path, problems):
        text = string_field(path, number, record, "text", problems, required=True)
        if text is not None and not text.strip():
            problems.add(path, number, f"query {query_id!r} has an empty 'text'")
        elif text is not None:
            queries[query_id] = text
    return queries


def read_qrels(
    path: Path,
    problems: Problems,
    query_ids: set[str] | None = None,
    doc_ids: Container[str] | None = None,
    unretrievable: list[tuple[str, str]] | None = None,
) -> Qrels:
    """Parse one qrels file; query ids are checked against the queries when given. A document id
    not in ``doc_ids`` is no error (BEIR's own releases have some): the judgment is kept, relevant
    and unretrievable, and appended to ``unretrievable`` as (query id, document id)."""
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not any(line.strip() for line in lines):
        problems.add(path, None, "empty file")
        return qrels
    header = tuple(part.strip().lower() for part in lines[0].split("\t"))
    if header != QRELS_HEADER:
        problems.add(path, 1, f"bad header {lines[0]!r}, expected 'query-id<TAB>corpus-id<TAB>score'")
        return qrels
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            problems.add(path, number, f"expected 3 tab-separated fields, got {len(parts)}")
            continue
        query_id, doc_id, raw_score = (part.strip() for part in parts)
        try:
            score = int(raw_score)
        except ValueError:
            problems.add(path, number, f"field 'score' must be an integer, got {raw_score!r}")
            continue
        if query_ids is not None and query_id not in query_ids:
            problems.add(path, number, f"unknown query-id {query_id!r} (not in queries.jsonl)")
            continue
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            problems.add(path, number, f"duplicate judgment for query {query_id!r}, document {doc_id!r}")
            continue
        judged[doc_id] = score
        if doc_ids is not None and unretrievable is not None and doc_id not in doc_ids:
            unretrievable.append((query_id, doc_id))
    return qrels


def _parse(path: Path, problems: Problems) -> BeirDataset:
    path = Path(path)
    if not path.is_dir():
        problems.add(path, None, "not a folder (expected corpus.jsonl, queries.jsonl, qrels/)")
        return BeirDataset(path, {}, {}, {})
    from hardneg.data.store_build import open_corpus  # deferred: only loading needs numpy and pyarrow

    corpus = open_corpus(path / "corpus.jsonl", problems)
    queries = read_queries(path / "queries.jsonl", problems)
    qrels_dir = path / "qrels"
    qrels_files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not qrels_files:
        problems.add(qrels_dir, None, "no qrels/<split>.tsv file")
    qrels: dict[str, Qrels] = {}
    unretrievable: dict[str, list[tuple[str, str]]] = {}
    for file in qrels_files:
        missing: list[tuple[str, str]] = []
        qrels[file.stem] = read_qrels(file, problems, set(queries), corpus, missing)
        if missing:
            unretrievable[file.stem] = missing
            warn_unretrievable(path, file, len(missing))
    return BeirDataset(path=path, corpus=corpus, queries=queries, qrels=qrels, unretrievable=unretrievable)


def warn_unretrievable(folder: Path, qrels_file: Path, count: int) -> None:
    """Say once per process and qrels file that judged documents are missing from the corpus."""
    key = (str(qrels_file.resolve()), count)
    if key in _warned:
        return
    _warned.add(key)
    documents = "document is" if count == 1 else "documents are"
    log.warning(
        f"warning: {folder.name} qrels/{qrels_file.name}: {count} judged {documents} not in the corpus; "
        "counted relevant and unretrievable, as BEIR does"
    )


def available_memory() -> int | None:
    """Bytes the kernel says it can still give (MemAvailable); None where /proc/meminfo is not."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def require_memory(path: Path, needed: float, what: str) -> None:
    """Refuse up front, in one line, work that would not fit in the memory left, rather than be
    killed by the kernel halfway through it."""
    available = available_memory()
    if available is not None and needed > available:
        raise HardnegError(
            f"{path}: {what} needs ~{needed / 1e9:.1f} GB in memory and "
            f"{available / 1e9:.1f} GB is available: "
            "free memory, or use a smaller corpus"
        )


def load_beir(path: str | Path) -> BeirDataset:
    """Load a BEIR folder, raising a ``DataError`` (file, line, message) on the first problem."""
    return _parse(Path(path), Problems(strict=True))


def validate_beir(path: str | Path) -> tuple[BeirDataset, list[DataError]]:
    """Parse a BEIR folder and return every problem found, so a user can fix them all at once."""
    problems = Problems(strict=False)
    dataset = _parse(Path(path), problems)
    return dataset, problems.found
