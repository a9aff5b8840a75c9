"""Whether a model or a triplets file named by its path carries knowledge of a corpus: the fact
behind a row's corpus-free mark when a stage names such a file rather than a stage of its own grid.

What hardneg made records where it came from: a trained model's ``hardneg_training.json`` (the
cross-encoder's settings, the bi-encoder's triplets file) and every stage output's manifest (its
stage, settings and inputs). Following those records back answers the question; a model or file from
elsewhere has none, never saw this corpus here, and counts as corpus-free; a trail that breaks (a
triplets file without its manifest) cannot show that it did not, and counts as reading one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hardneg.core.manifest import MODEL_RECORD, manifest_path
from hardneg.settings.mining import SCORER_KINDS


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
    ``hardneg train`` on triplets that read a corpus (or from a base model or GIST guide that did)."""
    record = _read(folder / MODEL_RECORD)
    if record is None:
        return False
    triplets = record.get("triplets")
    if isinstance(triplets, str):  # hardneg train: what its triplets read, and what it started from
        key = record.get("key") if isinstance(record.get("key"), dict) else {}
        settings = key.get("settings") if isinstance(key.get("settings"), dict) else {}
        gist = settings.get("gist") if isinstance(settings.get("gist"), dict) else {}
        models = [settings.get("base_model"), gist.get("guide")]
        if any(isinstance(m, str) and spec_reads_corpus(m, seen) for m in models):
            return True
        return triplets_read_corpus(Path(triplets), seen)
    settings = record.get("settings")  # hardneg train-cross-encoder: where its negatives came from
    return isinstance(settings, dict) and settings.get("corpus", "dataset") == "dataset"


PAIRS_ROLES = ("pairs", "dataset")
"""Inputs a stage may read without reading the corpus beyond the pairs' positives."""


def triplets_read_corpus(path: Path, seen: set[str] | None = None) -> bool:
    """A triplets file whose making (by its manifest, back through its inputs) read a corpus: mined
    from the dataset's corpus, or filtered, scored or ranked by a model that learned from one. A
    file without a manifest cannot say: it counts as reading one (a row is corpus-free only when
    its records show it)."""
    seen = set() if seen is None else seen
    if str(path) in seen:
        return False
    seen.add(str(path))
    manifest = _read(manifest_path(path))
    if manifest is None:
        return True
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
    for role, entry in inputs.items():
        where = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(where, str) or role.startswith(PAIRS_ROLES):
            continue
        where_path = Path(where)
        if where_path.is_dir() and model_reads_corpus(where_path, seen):
            return True
        if not where_path.is_dir() and triplets_read_corpus(where_path, seen):
            return True
    return False
