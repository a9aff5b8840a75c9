"""`<output>.manifest.json` beside every stage output: what ran, on what, with which settings,
and what came of it, so a result can be traced and a rerun with the same inputs can be skipped."""

from __future__ import annotations

import hashlib
import json
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hardneg.core.io import beside, cache_root, write_json

MODEL_RECORD = "hardneg_training.json"
"""Written last (atomically) into a trained model's folder: its presence means the model is done; it
holds what the model was trained on, its counts and timings, and the settings that decide corpus
access."""

PACKAGES = ("hardneg", "torch", "sentence-transformers", "transformers", "bm25s", "pytrec-eval-terrier")


class Stopwatch:
    """Named laps: ``clock.lap("retrieve")`` records the seconds since the previous lap."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[f"{name}_s"] = round(self.laps.get(f"{name}_s", 0.0) + now - self._last, 3)
        self._last = now


def sha256_of(path: str | Path) -> str:
    """A file's hash, or a folder's: every file under it, by relative name and content."""
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def output_stat(path: str | Path) -> dict[str, int]:
    """What a stat says of an output (files, bytes, newest mtime): equal means unchanged since its
    record was written, without reading it."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [f.stat() for f in files]
    return {
        "files": len(stats),
        "bytes": sum(s.st_size for s in stats),
        "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
    }


def committed(output: str | Path, marker: str | Path | None = None) -> bool:
    """A stage counts as done only when its record (the manifest, written last and atomically)
    names the output's hash and the output still matches it: by stat, or else by hash (then the
    record is brought up to date and the output kept). An output without a record is not trusted."""
    output = Path(output)
    if not Path(marker or output).exists():
        return False
    path = manifest_path(output)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    recorded = record.get("output_sha256") if isinstance(record, dict) else None
    if not recorded:
        return False
    now = output_stat(output)
    if record.get("output_stat") == now:
        return True
    if sha256_of(output) != recorded:
        return False
    try:  # verified: remember the stat, so the next check reads nothing
        write_json(path, {**record, "output_stat": now})
    except OSError:
        pass
    return True


def cached_sha256(path: str | Path) -> str:
    """A file's hash, remembered under the cache by its path, size and mtime: a dataset's identity is
    checked by every worker, and a large corpus is read once."""
    path = Path(path).resolve()
    stat = path.stat()
    name = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_root() / "hashes" / name
    try:
        return json.loads(memo.read_text())
    except (OSError, ValueError):
        pass
    value = sha256_of(path)
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        write_json(memo, value)
    except OSError:
        pass
    return value


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def manifest_path(output: str | Path) -> Path:
    return beside(output, ".manifest.json")


def manifest_counts(output: str | Path) -> dict[str, Any] | None:
    """The counts a finished stage's manifest recorded; None while it has none (not run, or
    unreadable: a report says "unknown" rather than fail on one damaged file)."""
    try:
        return json.loads(manifest_path(output).read_text(encoding="utf-8")).get("counts", {})
    except (OSError, ValueError):
        return None


def input_sha256(path: str | Path) -> str:
    """An input's hash: the one its own manifest recorded when it is a stage output (a model folder
    is hashed once, when trained, not again by every evaluation of it), else computed."""
    path, recorded = Path(path), manifest_path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    newest = max((p.stat().st_mtime for p in files), default=0.0)  # stat only: nothing is read
    if recorded.exists() and recorded.stat().st_mtime >= newest:
        try:
            value = json.loads(recorded.read_text()).get("output_sha256")
        except (OSError, ValueError):
            value = None
        if value:
            return value
    return sha256_of(path)


def write_manifest(
    output: str | Path,
    stage: str,
    settings: BaseModel,
    inputs: dict[str, str | Path],
    counts: dict[str, Any],
    timings: dict[str, float],
) -> Path:
    path = manifest_path(output)
    write_json(
        path,
        {
            "stage": stage,
            "output": str(Path(output).resolve()),
            "output_sha256": sha256_of(output),
            "output_stat": output_stat(output),
            "settings": settings.model_dump(mode="json"),
            "inputs": {
                name: {"path": str(Path(p).resolve()), "sha256": input_sha256(p)}
                for name, p in inputs.items()
            },
            "counts": counts,
            "timings": timings,
            "packages": package_versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return path
