"""Triplets to and from sentence-transformers datasets: the columns `mine_hard_negatives` writes
(``anchor, positive, negative_1..n`` or one ``anchor, positive, negative`` row per negative), as a
Hugging Face ``save_to_disk`` folder, a Parquet file or JSON lines. Exporting feeds hardneg's
negatives to any sentence-transformers script; importing lets a user's existing data join
``combine``, ``audit``, ``train`` and the runner."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from hardneg.core.errors import DataError, HardnegError
from hardneg.core.io import atomic_open
from hardneg.core.manifest import Stopwatch, write_manifest
from hardneg.data.records import Negative, Triplet, read_triplets, write_records
from hardneg.settings.exchange import ExportSettings, ImportSettings


@dataclass
class Exported:
    output: Path
    counts: dict[str, Any] = field(default_factory=dict)


def load_triplets(path: str | Path, source: str = "imported") -> list[Triplet]:
    """A JSONL triplet file as ever; a save_to_disk folder or a Parquet file through ``import_rows``."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        return import_rows(path, source=source)[0]
    return read_triplets(path)


def to_columns(triplets: list[Triplet], config: ExportSettings, counts: dict[str, int]) -> dict[str, list]:
    """The columns of one layout; ``counts`` gets the rows, and the triplets padded or left out."""
    n = config.num_negatives
    if n is None:
        n = max((len(t.negatives) for t in triplets), default=0)
    columns: dict[str, list] = {name: [] for name in _names(config, n)}
    for triplet in triplets:
        negatives = triplet.negatives[:n]
        if n and not negatives:
            counts["dropped_empty"] = counts.get("dropped_empty", 0) + 1
            continue
        if config.columns == "n-tuple" and len(negatives) < n:
            if config.short_triplets == "drop":
                counts["dropped_short"] = counts.get("dropped_short", 0) + 1
                continue
            counts["padded_short"] = counts.get("padded_short", 0) + 1
            negatives = [negatives[i % len(negatives)] for i in range(n)]
        rows = [negatives] if config.columns == "n-tuple" else [[neg] for neg in negatives] or [[]]
        for row in rows:
            columns["anchor"].append(triplet.query)
            columns["positive"].append(triplet.positive)
            if config.id_columns:
                columns["query_id"].append(triplet.query_id)
                columns["positive_id"].append(triplet.positive_id)
            for i, negative in enumerate(row, start=1):
                suffix = f"_{i}" if config.columns == "n-tuple" else ""
                columns["negative" + suffix].append(negative.text)
                if config.source_column:
                    columns["source" + suffix].append(negative.source)
                if config.score_column:
                    columns["score" + suffix].append(negative.score)
    counts["rows"] = len(columns["anchor"])
    counts["negatives_per_row" if config.columns == "n-tuple" else "max_negatives_per_triplet"] = n
    return columns


def _names(config: ExportSettings, n: int) -> list[str]:
    names = ["anchor", "positive"] + ["query_id", "positive_id"] * config.id_columns
    suffixes = [f"_{i}" for i in range(1, n + 1)] if config.columns == "n-tuple" else [""] * (n > 0)
    extra = ["source"] * config.source_column + ["score"] * config.score_column
    return names + [f"negative{s}" for s in suffixes] + [f"{e}{s}" for e in extra for s in suffixes]


def export_triplets(paths: Iterable[str | Path], config: ExportSettings, output: str | Path) -> Exported:
    """Write the dataset atomically (a staging file or folder beside ``output``, then a rename),
    with a manifest; then push it when asked. The hub is checked first, so an unreachable one
    fails before any work."""
    paths, output, clock = [Path(p) for p in paths], Path(output), Stopwatch()
    if config.push_to_hub:
        _check_hub(config.push_to_hub)
    triplets = [t for path in paths for t in load_triplets(path)]
    counts: dict[str, Any] = {"triplets": len(triplets)}
    columns = to_columns(triplets, config, counts)
    clock.lap("prepare")
    if config.format == "jsonl":
        with atomic_open(output) as handle:
            for i in range(counts["rows"]):
                handle.write(json.dumps({k: v[i] for k, v in columns.items()}, ensure_ascii=False) + "\n")
    elif config.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_open(output, "wb") as handle:
            pq.write_table(pa.table(columns), handle)
    else:
        staging = output.with_name(f".{output.name}.saving")
        shutil.rmtree(staging, ignore_errors=True)
        _dataset(columns).save_to_disk(str(staging))
        shutil.rmtree(output, ignore_errors=True)
        output.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(output)
    clock.lap("write")
    if config.push_to_hub:
        _push(_dataset(columns), config.push_to_hub, output)
        counts["pushed_to"] = config.push_to_hub
        clock.lap("push")
    inputs = {f"triplets_{i + 1}": p for i, p in enumerate(paths)}
    write_manifest(output, "export", config, inputs, counts, clock.laps)
    return Exported(output, counts)


def _dataset(columns: dict[str, list]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(columns)


def _check_hub(repo: str) -> None:
    from huggingface_hub import get_token

    from hardneg.core.models import _hub_reachable

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise HardnegError(
            f"--push-to-hub {repo}: the Hugging Face Hub is off (HF_HUB_OFFLINE is set); "
            "export without it and push later"
        )
    if not get_token():
        raise HardnegError(
            f"--push-to-hub {repo}: no Hugging Face token (set HF_TOKEN or run 'hf auth login')"
        )
    if not _hub_reachable():
        raise HardnegError(
            f"--push-to-hub {repo}: the Hugging Face Hub is unreachable; export without it and push later"
        )


def _push(dataset: Any, repo: str, output: Path) -> None:
    try:
        dataset.push_to_hub(repo)
    except Exception as exc:  # network, auth, permissions: the hub's reasons, on one line
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise HardnegError(f"--push-to-hub {repo}: {reason} (the dataset is written to {output})") from None


def _read_columns(path: Path) -> dict[str, list]:
    """Column name -> values of a save_to_disk folder (a DatasetDict's 'train' or only split), a
    Parquet file, or JSON lines of rows."""
    if not path.exists():
        raise DataError(path, None, "not found")
    try:
        if path.is_dir():
            from datasets import DatasetDict, load_from_disk

            dataset = load_from_disk(str(path))
            if isinstance(dataset, DatasetDict):
                if "train" not in dataset and len(dataset) != 1:
                    raise DataError(path, None, f"several splits ({', '.join(dataset)}) and none is 'train'")
                dataset = dataset["train"] if "train" in dataset else next(iter(dataset.values()))
            return dataset.to_dict()
        if path.suffix == ".jsonl":
            rows = [
                json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
            return {
                key: [row.get(key) for row in rows] for key in dict.fromkeys(k for row in rows for k in row)
            }
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pydict()
    except DataError:
        raise
    except Exception as exc:  # not a dataset at all: datasets' or pyarrow's reason, on one line
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise DataError(
            path, None, f"not a Hugging Face dataset folder, Parquet or JSONL file: {reason}"
        ) from None


def _stable_id(prefix: str, text: str) -> str:
    """The same text gets the same id in every file, so imported files combine with each other."""
    return f"{prefix}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


def import_rows(path: str | Path, source: str = "imported") -> tuple[list[Triplet], dict[str, int]]:
    """Triplets from a sentence-transformers dataset: rows of one (anchor, positive) become one
    triplet, its negatives in row and column order, a repeated text (padding) kept once.
    Missing ids are hashes of the texts; a missing source is ``source``."""
    path = Path(path)
    columns = _read_columns(path)
    for needed in ("anchor", "positive"):
        if needed not in columns:
            raise DataError(
                path,
                None,
                f"no '{needed}' column (columns: {', '.join(columns) or 'none'}); a "
                "sentence-transformers dataset has anchor, positive, negative or negative_1..n",
            )
    numbered = sorted((int(c[9:]) for c in columns if c.startswith("negative_") and c[9:].isdigit()))
    if "negative" in columns and numbered:
        raise DataError(path, None, "both a 'negative' column and 'negative_1..n' columns: pick one layout")
    suffixes = [f"_{i}" for i in numbered] if numbered else [""] * ("negative" in columns)
    by_pair: dict[tuple[str, str], Triplet] = {}
    counts = {"rows": len(columns["anchor"]), "duplicate_negatives": 0}

    def text(row: int, column: str) -> str:
        value = columns[column][row]
        if value is None or isinstance(value, str) and not value.strip():
            raise DataError(path, None, f"row {row}, column '{column}': empty text")
        if not isinstance(value, str):
            raise DataError(path, None, f"row {row}, column '{column}': not a text ({value!r})")
        return value

    def given(column: str, row: int) -> Any:
        value = columns[column][row] if column in columns else None
        return None if value in (None, "") else value

    for row in range(counts["rows"]):
        anchor, positive = text(row, "anchor"), text(row, "positive")
        query_id = str(given("query_id", row) or _stable_id("q", anchor))
        positive_id = str(given("positive_id", row) or _stable_id("d", positive))
        triplet = by_pair.get((query_id, positive_id))
        if triplet is None:
            triplet = Triplet(
                query_id=query_id, query=anchor, positive_id=positive_id, positive=positive, negatives=[]
            )
            triplet._line = None  # type: ignore[assignment]  # rows are named in messages, not lines
            by_pair[query_id, positive_id] = triplet
        for suffix in suffixes:
            negative = text(row, "negative" + suffix)
            if any(n.text == negative for n in triplet.negatives):
                counts["duplicate_negatives"] += 1
                continue
            score = given("score" + suffix, row)
            triplet.negatives.append(
                Negative(
                    text=negative,
                    source=str(given("source" + suffix, row) or source),
                    score=None if score is None else float(score),
                )
            )
    if not by_pair:
        raise DataError(path, None, "no rows")
    triplets = list(by_pair.values())
    counts.update(triplets=len(triplets), negatives=sum(len(t.negatives) for t in triplets))
    return triplets, counts


def import_dataset(path: str | Path, output: str | Path, source: str = "imported") -> dict[str, int]:
    """``import_rows`` written as triplet JSONL with a manifest."""
    clock = Stopwatch()
    triplets, counts = import_rows(path, source)
    write_records(output, triplets)
    clock.lap("import")
    write_manifest(output, "import", ImportSettings(source=source), {"dataset": path}, counts, clock.laps)
    return counts
