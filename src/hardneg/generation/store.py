"""Every finished LLM request, kept durably the moment it completes, so a run killed at any point
resumes without paying for an answer twice.

An append-only JSONL file, one ``{"key", ...}`` record per answer. Each line is handed to the
operating system as it arrives (a ``kill -9`` loses nothing received); the disk sync is
group-committed, at most ``SYNC_EVERY`` seconds apart (a power cut loses at most that window, which a
rerun simply asks again). A kill can only cut the last line short; opening the store drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from hardneg.core import reuse
from hardneg.core.errors import DataError


def request_key(**parts: Any) -> str:
    """A stable hash of everything that determines an answer (model, template, settings, pair,
    sample index): a rerun with the same parts finds the stored answer."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


SYNC_EVERY = 0.1
"""Seconds between disk syncs: one fsync per batch, not per answer, keeps a fast server fed."""


class ResponseStore:
    """One writer at a time: a second process opening the same store (two stages sharing a judge's
    answers, say) waits for the first to close it, then replays what it stored."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        self._synced_at = time.monotonic()
        self._dirty = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", encoding="utf-8")
        fcntl.flock(self._handle, fcntl.LOCK_EX)  # the file itself is the lock: no lock file left behind
        self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        complete = raw[: raw.rfind(b"\n") + 1]
        if len(complete) < len(raw):  # a line cut short by a kill: drop it before appending
            with self.path.open("r+b") as handle:
                handle.truncate(len(complete))
        for number, line in enumerate(complete.decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                self.records[record["key"]] = record
            except (json.JSONDecodeError, KeyError, TypeError):
                raise DataError(
                    self.path, number, "not a stored response (delete the file to start over)"
                ) from None
        if self.records:
            reuse.reused(f"stored answers ({self.path.name})")

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def put(self, key: str, record: dict[str, Any]) -> None:
        record = {"key": key, **record}
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.records[key] = record
        self._dirty = True
        if time.monotonic() - self._synced_at >= SYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        """Commit every answer so far to disk (callers also run it on a timer while waiting)."""
        if self._dirty:
            os.fsync(self._handle.fileno())
            self._dirty = False
        self._synced_at = time.monotonic()

    def close(self) -> None:
        self.sync()
        self._handle.close()  # releases the lock

    def __enter__(self) -> ResponseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.asynccontextmanager
    async def syncing(self) -> AsyncIterator[ResponseStore]:
        """Group-commit every ``SYNC_EVERY`` seconds while requests are in flight, and once at the end."""

        async def tick() -> None:
            while True:
                await asyncio.sleep(SYNC_EVERY)
                self.sync()

        task = asyncio.create_task(tick())
        try:
            yield self
        finally:
            task.cancel()
            self.sync()
