"""Whether a model or a triplets file named by its path carries knowledge of a corpus: the fact
behind a row's corpus-free mark when a stage names such a file rather than a stage of its own grid.

What hardneg made records where it came from: a trained model's ``hardneg_training.json`` (the
cross-encoder's settings, the bi-encoder's triplets file) and every stage output's manifest (its
stage, settings and inputs). Following those records back answers the question; a model or file from
elsewhere has none, never saw this corpus here, and counts as corpus-free."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.core.manifest import MODEL_RECORD, manifest_path

SCORER_KINDS = ("dense:", "cross-encoder:")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def spec_reads_corpus(spec: str | None, seen: set[str] | None = None) -> bool:
    """A scorer ('dense:PATH', 'cross-encoder:PATH') or a model path whose model learned from a
    corpus's negatives."""
    if not spec:
        return False
    path = spec.partition(":")[2] if spec.startswith(SCORER_KINDS) else spec
    return model_reads_corpus(Path(path).expanduser(), seen)


def model_reads_corpus(folder: Path, seen: set[str] | None = None) -> bool:
    """A model folder trained by ``hardneg train-cross-encoder`` with corpus negatives, or by
    ``hardneg train`` on triplets that read a corpus."""
    record = _read(folder / MODEL_RECORD)
    if record is None:
        return False
    triplets = record.get("triplets")
    if isinstance(triplets, str):  # hardneg train: what its triplets read
        return triplets_read_corpus(Path(triplets), seen)
    settings = record.get("settings")  # hardneg train-cross-encoder: where its negatives came from
    return isinstance(settings, dict) and settings.get("corpus", "dataset") == "dataset"


def triplets_read_corpus(path: Path, seen: set[str] | None = None) -> bool:
    """A triplets file whose making (by its manifest, back through its inputs) read a corpus: mined
    from the dataset's corpus, or filtered, scored or ranked by a model that learned from one."""
    seen = set() if seen is None else seen
    if str(path) in seen:
        return False
    seen.add(str(path))
    manifest = _read(manifest_path(path))
    if manifest is None:
        return False
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    if manifest.get("stage") == "mine" and settings.get("corpus", "dataset") == "dataset":
        return True
    filters = settings.get("filters") if isinstance(settings.get("filters"), dict) else {}
    models = [filters.get("scorer"), settings.get("score_with")]
    if manifest.get("stage") == "mine" and settings.get("method") != "bm25":
        models.append(settings.get("model"))
    if any(isinstance(m, str) and spec_reads_corpus(m, seen) for m in models):
        return True
    inputs = manifest.get("inputs") if isinstance(manifest.get("inputs"), dict) else {}
    for entry in inputs.values():
        where = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(where, str):
            continue
        where_path = Path(where)
        if where_path.is_dir() and model_reads_corpus(where_path, seen):
            return True
        if where_path.is_file() and triplets_read_corpus(where_path, seen):
            return True
    return False
