"""The dry run's arithmetic: what a stage will do and roughly how long it takes, sized from the
dataset's files (counted, never loaded) and the estimates of the stages upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

ENCODE_DOCS_PER_S_AT_256 = 9.3
"""MiniLM encoding SciFact's corpus at 256 tokens on 2 CPU cores took 557 s (../shared/data/README.md)."""


def encode_rate(max_seq_length: int | None) -> float:
    return ENCODE_DOCS_PER_S_AT_256 * 256 / (max_seq_length or 256)


class Estimate(BaseModel):
    """The dry run's view of a stage: its work in its own units and a rough CPU time. ``pairs`` and
    ``documents`` flow downstream so a training stage can size itself from its pairs."""

    work: str = ""
    seconds: float | None = None
    """Rough seconds on 2 CPU cores; None when it depends on what we cannot see (a server, remote data)."""
    pairs: int | None = None
    documents: int | None = None
    text_chars: int | None = None
    """Mean characters of a pair's query + positive: sizes an LLM's prompts."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None


class DataSizes:
    """Dataset sizes for estimates, counted from files (lines, judgments) without loading a corpus;
    None for data that is not local (a dry run never downloads)."""

    def __init__(self, data_root: str | None):
        self.data_root = data_root
        self._folders: dict[str, Path | None] = {}
        self._counts: dict[tuple[str, str], Any] = {}

    def folder(self, name: str) -> Path | None:
        from hardneg.core.errors import HardnegError
        from hardneg.data.registry import resolve_dataset

        if name not in self._folders:
            try:
                self._folders[name] = resolve_dataset(name, self.data_root, download=False)
            except HardnegError:
                self._folders[name] = None
        return self._folders[name]

    def documents(self, name: str) -> int | None:
        from hardneg.data.registry import PUBLISHED_SIZES

        folder = self.folder(name)
        if folder is None:
            return PUBLISHED_SIZES.get(name)
        if (name, "corpus") not in self._counts:
            self._counts[(name, "corpus")] = _count_lines(folder / "corpus.jsonl")
        return self._counts[(name, "corpus")]

    def pairs(self, name: str, split: str, one_per_query: bool) -> int | None:
        """(query, positive) pairs of a split: counted, or the published count of data not yet here."""
        from hardneg.data.registry import PUBLISHED_TRAIN

        qrels = self.qrels(name, split)
        if qrels is not None:
            return len(qrels) if one_per_query else sum(qrels.values())
        published = PUBLISHED_TRAIN.get(name) if split == "train" and self.folder(name) is None else None
        return published[0 if one_per_query else 1] if published else None

    def text_chars(self, name: str, sample: int = 500) -> int:
        """Mean characters of a query plus a document, from the first ``sample`` lines of each file;
        400 (an MS MARCO passage and its query) for data that is not here."""
        folder = self.folder(name)
        if folder is None:
            return 400
        if (name, "chars") not in self._counts:
            total = 0
            for file in ("queries.jsonl", "corpus.jsonl"):
                lengths = []
                with (folder / file).open(encoding="utf-8") as handle:
                    for line, _ in zip(handle, range(sample)):
                        record = json.loads(line)
                        lengths.append(len(record.get("title", "")) + len(record.get("text", "")))
                total += sum(lengths) // max(1, len(lengths))
            self._counts[(name, "chars")] = total
        return self._counts[(name, "chars")]

    def qrels(self, name: str, split: str) -> dict[str, int] | None:
        """Positive judgments per query in a split."""
        folder = self.folder(name)
        if folder is None or not (folder / "qrels" / f"{split}.tsv").is_file():
            return None
        if (name, split) not in self._counts:
            from hardneg.data.beir import Problems, read_qrels

            qrels = read_qrels(
                folder / "qrels" / f"{split}.tsv", Problems(strict=False)
            )  # ids not checked: no corpus
            positives = {q: sum(grade > 0 for grade in docs.values()) for q, docs in qrels.items()}
            self._counts[(name, split)] = {q: n for q, n in positives.items() if n}
        return self._counts[(name, split)]


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            count += block.count(b"\n")
    return count


def memory_gb(estimate: Estimate) -> float:
    """A model process (~1.5 GB) plus ~3 KB per document held (text, tokens, vectors)."""
    return round(1.5 + (estimate.documents or 0) * 3e-6, 1)
