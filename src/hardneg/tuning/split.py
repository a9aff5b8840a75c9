"""The tune's own BEIR folder: the train split's queries, cut by query into ``train`` and ``dev``
qrels, beside the user's corpus (or, without one, the pool of the pairs' positives). It is built
from the train qrels, the queries they name and the corpus only: no other split's file is opened,
so a choice made on it never spends the test set."""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.core.io import write_json
from hardneg.core.manifest import cached_sha256
from hardneg.data.beir import read_qrels
from hardneg.data.parsing import Problems
from hardneg.data.records import read_pairs
from hardneg.data.registry import BEIR_DATASETS, data_roots, resolve_dataset
from hardneg.settings.tune import TuneSettings

DEV = "dev"
TRAIN = "train"
ALL = "all"
"""Train and dev queries together: what the winner's recipe trains on when the pairs came from a file."""
SPLIT_VERSION = 1


@dataclass
class TuneData:
    folder: Path
    """The BEIR folder every rung trains and scores on."""
    source: str
    """The user's dataset (name or folder), or their pairs file."""
    has_corpus: bool
    train_queries: int
    dev_queries: int
    train_pairs: int
    """Judged positives left for training (one per query when the grid says so)."""


def _source_folder(settings: TuneSettings) -> tuple[Path | None, Path | None]:
    """(folder holding the train qrels, folder holding corpus.jsonl): found by files, never loaded."""
    if settings.pairs is not None:
        corpus = Path(settings.corpus).expanduser() if settings.corpus else None
        if corpus is not None and not (corpus / "corpus.jsonl").is_file():
            raise HardnegError(f"{corpus}: no corpus.jsonl (--corpus takes a BEIR folder)")
        return None, corpus
    name = settings.dataset
    candidate = Path(name).expanduser()
    for folder in [candidate] + [root / name for root in data_roots().search]:
        if (folder / "qrels").is_dir() and (folder / "queries.jsonl").is_file():
            return folder, folder if (folder / "corpus.jsonl").is_file() else None
    if name in BEIR_DATASETS:  # a BEIR name not here yet: downloaded once, like every command does
        folder = resolve_dataset(name)
        return folder, folder
    searched = ", ".join(str(root) for root in data_roots().search)
    raise HardnegError(
        f"dataset {name!r}: no BEIR folder with queries.jsonl and qrels/ (as a path, or under {searched})"
    )


def _read_judgments(
    settings: TuneSettings, folder: Path | None
) -> tuple[dict[str, dict[str, int]], dict[str, str], dict[str, str] | None]:
    """(qrels, query texts, positives' texts when they come from a pairs file)."""
    if folder is None:
        pairs = read_pairs(settings.pairs)
        qrels: dict[str, dict[str, int]] = {}
        queries: dict[str, str] = {}
        texts: dict[str, str] = {}
        for pair in pairs:
            qrels.setdefault(pair.query_id, {})[pair.positive_id] = 1
            queries[pair.query_id] = pair.query
            texts[pair.positive_id] = pair.positive
        return qrels, queries, texts
    path = folder / "qrels" / f"{settings.train_split}.tsv"
    if not path.is_file():
        have = ", ".join(sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))) or "none"
        raise HardnegError(
            f"{path}: no {settings.train_split!r} split to tune on (splits here: {have}); tune needs train "
            "pairs: give --train-split, or --pairs FILE"
        )
    problems = Problems(strict=True)
    qrels = read_qrels(path, problems)
    wanted = set(qrels)
    queries: dict[str, str] = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                raise HardnegError(f"{folder / 'queries.jsonl'}:{number}: not valid JSON") from None
            if isinstance(record, dict) and record.get("_id") in wanted:
                queries[str(record["_id"])] = str(record.get("text", ""))
    missing = sorted(wanted - set(queries))
    if missing:
        raise HardnegError(f"{path}: query-id {missing[0]!r} is not in queries.jsonl ({len(missing)} such)")
    return qrels, queries, None


def dev_query_ids(query_ids: list[str], settings: TuneSettings) -> list[str]:
    """A seeded share of the queries (at most ``dev_max_queries``), by query id."""
    ids = sorted(query_ids)
    count = min(math.ceil(len(ids) * settings.dev_share), settings.dev_max_queries or len(ids))
    return sorted(random.Random(settings.seed).sample(ids, count))


def prepare(settings: TuneSettings, output: Path) -> TuneData:
    """Write (or reuse) ``OUTPUT/data/NAME``: atomic, and rebuilt when its inputs or settings change."""
    folder, corpus = _source_folder(settings)
    qrels, queries, texts = _read_judgments(settings, folder)
    positive = {q: {d: s for d, s in judged.items() if s > 0} for q, judged in qrels.items()}
    usable = sorted(q for q, judged in positive.items() if judged)
    dev = dev_query_ids(usable, settings)
    if len(dev) < settings.min_dev_queries:
        where = settings.pairs or f"{folder}/qrels/{settings.train_split}.tsv"
        raise HardnegError(
            f"{where}: {len(usable)} queries with a positive; a dev split of {settings.dev_share:.0%} gives "
            f"{len(dev)} (< {settings.min_dev_queries}): give more pairs, or a larger --dev-share"
        )
    dev_set = set(dev)
    train = [q for q in usable if q not in dev_set]
    if len(train) < 2 * settings.min_dev_queries:
        raise HardnegError(
            f"{settings.pairs or folder}: {len(train)} train queries left after the dev split: "
            "too few to train on"
        )
    name = Path(settings.pairs).stem if settings.pairs else (folder.name if folder else "pairs")
    target = output / "data" / f"{name}-tune"
    read = [Path(settings.pairs)] if settings.pairs else [folder / "qrels" / f"{settings.train_split}.tsv"]
    read += [folder / "queries.jsonl"] if folder else []
    identity = {
        "version": SPLIT_VERSION,
        "source": str(settings.pairs or folder),
        "content": {str(path): cached_sha256(path) for path in read},  # edited in place: rebuilt
        "corpus": str(corpus) if corpus else None,
        "train_split": settings.train_split,
        "seed": settings.seed,
        "dev": dev,
        "train": train,
    }
    stamp = target / "tune-split.json"
    try:
        same = json.loads(stamp.read_text()) == identity
    except (OSError, ValueError):
        same = False  # none yet, or a broken one: rebuilt
    if not same:
        _write_folder(target, identity, qrels, queries, texts, corpus, dev_set, train)
    return TuneData(
        folder=target.resolve(),
        source=str(settings.pairs or settings.dataset),
        has_corpus=corpus is not None,
        train_queries=len(train),
        dev_queries=len(dev),
        train_pairs=sum(len(positive[q]) for q in train),
    )


def _write_folder(target, identity, qrels, queries, texts, corpus, dev_set, train) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (tmp / "qrels").mkdir()
        keep = set(train) | dev_set
        with (tmp / "queries.jsonl").open("w", encoding="utf-8") as handle:
            for qid in sorted(keep):
                handle.write(json.dumps({"_id": qid, "text": queries[qid]}, ensure_ascii=False) + "\n")
        for split, ids in ((TRAIN, sorted(train)), (DEV, sorted(dev_set)), (ALL, sorted(keep))):
            with (tmp / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as handle:
                handle.write("query-id\tcorpus-id\tscore\n")
                for qid in ids:
                    for doc_id, score in qrels[qid].items():
                        handle.write(f"{qid}\t{doc_id}\t{score}\n")
        if corpus is not None:
            os.symlink((corpus / "corpus.jsonl").resolve(), tmp / "corpus.jsonl")
        else:  # no corpus: the pool of every pair's positive is what dev queries are scored against
            with (tmp / "corpus.jsonl").open("w", encoding="utf-8") as handle:
                for doc_id, text in sorted(texts.items()):
                    handle.write(
                        json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n"
                    )
        write_json(tmp / "tune-split.json", identity)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
