"""The files that flow between stages: pairs and triplets, as JSONL with a checked schema.

pairs:    {"query_id", "query", "positive_id", "positive"}
triplets: pairs + {"negatives": [{"text", "source", "doc_id", "score", "rank"}]}, and when scored
          by one scorer (combine's ``score_with``) "positive_score" and "scorer"
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
)

from hardneg.core.errors import DataError
from hardneg.core.io import atomic_open


def normalize_text(text: str) -> str:
    """Texts that differ only in case or white space count as the same passage."""
    return " ".join(text.split()).lower()  # str.split in C: ~10x a regex over long abstracts


def passage_key(text: str) -> bytes:
    """A 16-byte fingerprint of the normalized text: what the same-text rule compares."""
    return hashlib.blake2b(normalize_text(text).encode(), digest_size=16).digest()


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    _line: int = PrivateAttr(0)  # where it was read, for error messages; not written back


class Pair(Record):
    query_id: str
    query: str
    positive_id: str
    positive: str

    @field_validator("query_id", "query", "positive_id", "positive")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Negative(Record):
    text: str
    source: str
    doc_id: str | None = None
    score: float | None = None
    rank: int | None = None


class Triplet(Pair):
    positive_score: float | None = None
    """The positive's score by ``scorer``, beside each negative's ``score`` (combine's ``score_with``):
    what loss 'margin-mse' distils. Absent when unscored, and then not written."""
    scorer: str | None = None
    """Who scored the positive and every negative ('dense:MODEL', 'cross-encoder:MODEL')."""
    negatives: list[Negative]

    @model_serializer(mode="wrap")
    def _unscored_as_before(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """An unscored triplet is written byte for byte as before these fields existed."""
        data = handler(self)
        for name in _SCORED:
            if data.get(name) is None:
                data.pop(name, None)
        return data


_SCORED = ("positive_score", "scorer")


R = TypeVar("R", bound=Record)


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "record"
    message = "missing" if first["type"] == "missing" else first["msg"]
    return f"field '{field}': {message}"


def read_records(path: str | Path, kind: type[R]) -> list[R]:
    """Every line parsed into ``kind``; the first bad line raises ``FILE:LINE: field: message``."""
    return list(iter_records(path, kind))


def iter_records(path: str | Path, kind: type[R]) -> Iterator[R]:
    """``read_records`` one line at a time, for a file read once and not kept (a pool's extra pairs:
    the pool keeps each distinct positive, not every pair's copy of its text)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "file not found")
    empty = True
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = kind.model_validate_json(raw)
            except ValidationError as exc:
                if exc.errors()[0]["type"] == "json_invalid":
                    raise DataError(path, number, "invalid JSON") from None
                raise DataError(path, number, _describe(exc)) from None
            record._line = number
            empty = False
            yield record
    if empty:
        raise DataError(path, None, "empty file")


def write_records(path: str | Path, records: Iterable[Record]) -> int:
    """Write JSONL atomically; returns the number of lines."""
    count = 0
    with atomic_open(path) as handle:
        for record in records:
            handle.write(json.dumps(record.model_dump(), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_pairs(path: str | Path) -> list[Pair]:
    return read_records(path, Pair)


def iter_pairs(path: str | Path) -> Iterator[Pair]:
    return iter_records(path, Pair)


def read_triplets(path: str | Path) -> list[Triplet]:
    return read_records(path, Triplet)
