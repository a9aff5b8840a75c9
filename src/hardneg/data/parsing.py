"""What a corpus.jsonl / queries.jsonl line parses into, and the checks every reader of one shares.

The BEIR loader (beir.py), the corpus store (store.py) and its builder (store_build.py) all need
these; they live below the three so that none of them imports another for them (they used to
import each other in a circle). Messages are ``FILE:LINE: ...`` ``DataError``s; tests match them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from hardneg.core.errors import DataError


def join_title(title: str, text: str) -> str:
    """Title and body as one passage, the way BEIR baselines index it."""
    return f"{title} {text}".strip() if title else text


@dataclass(frozen=True)
class Document:
    title: str
    text: str

    @property
    def full_text(self) -> str:
        return join_title(self.title, self.text)


@dataclass
class Problems:
    """Collects problems when validating; raises on the first one when loading."""

    strict: bool
    found: list[DataError] = field(default_factory=list)

    def add(self, path: Path, line: int | None, message: str) -> None:
        error = DataError(path, line, message)
        if self.strict:
            raise error
        self.found.append(error)


def jsonl_records(path: Path, problems: Problems, digest=None) -> Iterator[tuple[int, dict]]:
    """Objects with their line numbers; ``digest`` (a hashlib object) sees every byte of the file."""
    if not path.is_file():
        problems.add(path, None, "file not found")
        return
    empty = True
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if digest is not None:
                digest.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                empty = False
                problems.add(path, number, f"not UTF-8 (byte {exc.start + 1})")
                continue
            if not line.strip():
                continue
            empty = False
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.add(path, number, f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(record, dict):
                problems.add(path, number, "expected a JSON object")
                continue
            yield number, record
    if empty:
        problems.add(path, None, "empty file")


def record_id(path: Path, number: int, record: dict, problems: Problems) -> str | None:
    """The record's ``_id`` as a string (BEIR files also use numbers), or None once reported."""
    raw = record.get("_id")
    if raw is None:
        problems.add(path, number, "missing field '_id'")
        return None
    if not isinstance(raw, (str, int)) or isinstance(raw, bool) or str(raw) == "":
        problems.add(path, number, f"field '_id' must be a non-empty string, got {raw!r}")
        return None
    return str(raw)


def string_field(
    path: Path, number: int, record: dict, name: str, problems: Problems, required: bool
) -> str | None:
    """A string field; an optional one that is absent or null reads as ""; None once reported."""
    value = record.get(name)
    if value is None:
        if required:
            problems.add(path, number, f"missing field '{name}'")
            return None
        return ""
    if not isinstance(value, str):
        problems.add(path, number, f"field '{name}' must be a string, got {type(value).__name__}")
        return None
    return value
