"""A stage's cache key: its result-relevant settings, its inputs' keys, its dataset's identity and
the content of every file its settings name. Equal keys mean equal outputs, so a rerun reuses them."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hardneg.core.errors import HardnegError
from hardneg.core.manifest import cached_sha256
from hardneg.settings.mining import SCORER_KINDS

PLAN_VERSION = 3
"""Bumped when a stage's outputs change meaning or a keyed setting's default changes, so old
caches are not reused (3: keys leave out settings at their default)."""


def stage_key(
    kind: str, settings: Any, deps: list[str], identity: Any = None, files: dict[str, str] | None = None
) -> str:
    payload = {
        "version": PLAN_VERSION,
        "kind": kind,
        "settings": settings,
        "deps": deps,
        "identity": identity,
    }
    if files:  # only when a setting names a file: every other key stays as it was
        payload["files"] = files
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


NOT_FILES = {"dataset", "data_root"}
"""Settings naming a dataset: its identity enters the key on its own."""


def referenced_files(settings: Any, found: dict[str, str] | None = None) -> dict[str, str]:
    """The content hash of every file (or folder given as a path) a stage's settings name, such as a
    prompt template or a local model: edit the file, and the stage's key changes with it."""
    found = {} if found is None else found
    items = settings.items() if isinstance(settings, dict) else enumerate(settings)
    for name, value in items:
        if name in NOT_FILES:
            continue
        if isinstance(value, (dict, list, tuple)):
            referenced_files(value, found)
        elif isinstance(value, str) and value and value not in found:
            # a scorer names its model after its kind ('cross-encoder:runs/ce'): the path is the rest
            path = Path(value.partition(":")[2] if value.startswith(SCORER_KINDS) else value).expanduser()
            if path.is_file():
                found[value] = cached_sha256(path)
            elif path.is_dir() and ("/" in value or os.sep in value):
                files = sorted(p for p in path.rglob("*") if p.is_file())
                digest = hashlib.sha256()
                for file in files:
                    digest.update(f"{file.relative_to(path)}\0{cached_sha256(file)}\n".encode())
                found[value] = digest.hexdigest()
    return found


def dataset_identity(name: str, data_root: str | None, fetch: bool) -> dict[str, Any]:
    """Name plus its files' sizes: data edited in place gets new keys, a copy elsewhere does not.
    A real run fetches a missing dataset first (it needs it anyway), so its keys do not change after
    the download; a dry run never downloads and keys such a dataset by name."""
    from hardneg.data.registry import BEIR_DATASETS, resolve_dataset

    try:
        folder = resolve_dataset(name, data_root, download=fetch)
    except HardnegError:
        if fetch or name not in BEIR_DATASETS:
            raise  # a dry run too: a name that is neither local nor downloadable can never run
        return {"name": name}
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".jsonl", ".tsv"})
    return {"name": name, "files": [[str(p.relative_to(folder)), p.stat().st_size] for p in files]}


def dataset_content(name: str, data_root: str | None) -> tuple[str | None, str | None]:
    """Where a dataset resolves here and a hash of its files' content (corpus, queries, qrels), or
    (None, None) when it does not resolve: what the plan records and every worker checks."""
    from hardneg.data.registry import resolve_dataset
    from hardneg.mining.pool import qrels_folder

    try:
        folder = resolve_dataset(name, data_root, download=False)
    except HardnegError:
        try:
            folder = qrels_folder(name, data_root)  # a corpus-free folder: qrels alone
        except HardnegError:
            return None, None
    files = [folder / "corpus.jsonl", folder / "queries.jsonl", *sorted((folder / "qrels").glob("*.tsv"))]
    digest = hashlib.sha256()
    for path in (p for p in files if p.is_file()):
        digest.update(f"{path.relative_to(folder)}\0{cached_sha256(path)}\n".encode())
    return str(folder.resolve()), digest.hexdigest()
