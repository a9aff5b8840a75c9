"""Pool mining: negatives drawn from the other pairs' positives, for users who have (query,
positive) pairs but no corpus they can or want to index. The candidates are the pairs file's
distinct positives; every known positive of a query is masked (all its pairs, and every judgment
of the dataset's qrels when a dataset is named). ``corpus.jsonl`` is never opened."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from hardneg.core.errors import DataError, HardnegError
from hardneg.data.beir import BeirDataset, Qrels, read_qrels
from hardneg.data.parsing import Document, Problems
from hardneg.data.records import Pair
from hardneg.data.registry import data_roots

PAIRS_SPLIT = "<pairs>"
"""The pseudo-split holding the pairs themselves as judgments (grade 1)."""


def qrels_folder(name_or_path: str, data_root: str | Path | None = None) -> Path:
    """A dataset's folder found by its qrels alone: a corpus-free setup may have no corpus.jsonl."""
    candidate = Path(name_or_path).expanduser()
    roots = [candidate] + [root / str(name_or_path) for root in data_roots(data_root).search]
    for folder in roots:
        if (folder / "qrels").is_dir():
            return folder
    searched = ", ".join(str(root) for root in data_roots(data_root).search)
    raise HardnegError(
        f"dataset {name_or_path!r}: no folder with qrels/ found (as a path, or under {searched})"
    )


def dataset_qrels(folder: Path) -> dict[str, Qrels]:
    """Every split's judgments, read without the corpus or the queries (ids are not checked)."""
    files = sorted((folder / "qrels").glob("*.tsv"))
    if not files:
        raise HardnegError(f"{folder / 'qrels'}: no qrels/<split>.tsv file")
    return {path.stem: read_qrels(path, Problems(strict=True)) for path in files}


def pool_dataset(
    pairs: list[Pair],
    dataset: str | None = None,
    data_root: str | Path | None = None,
    source: str | Path = "pairs",
    more: tuple[Iterable[Pair], str | Path] | None = None,
) -> BeirDataset:
    """The pairs' positives as a corpus, their judgments (and the dataset's, when named) as qrels.
    ``source``: the pairs file, named in the error about an id with two texts; ``more``: other
    pairs (and their file) whose positives and judgments join the pool's, read once as they come
    (``iter_pairs``): the pool keeps one text per positive, not a copy per pair."""
    corpus: dict[str, Document] = {}
    own: Qrels = {}
    queries: dict[str, str] = {}
    first_seen: dict[str, tuple[str | Path, int]] = {}
    files = [(pairs, source)] + ([more] if more is not None else [])
    for file_pairs, path in files:
        for pair in file_pairs:
            known = corpus.get(pair.positive_id)
            if known is None:
                first_seen[pair.positive_id] = (path, pair._line)
                corpus[pair.positive_id] = Document("", pair.positive)
            elif known.text != pair.positive:
                seen, line = first_seen[pair.positive_id]
                raise DataError(
                    path,
                    pair._line or None,
                    f"field 'positive': positive_id {pair.positive_id!r} has another text at "
                    f"{'line ' if seen == path else f'{seen}:'}{line} (a pool needs one text per id)",
                )
            own.setdefault(pair.query_id, {})[pair.positive_id] = 1
            queries.setdefault(pair.query_id, pair.query)
    if dataset is None:
        return BeirDataset(Path("."), corpus, queries, {PAIRS_SPLIT: own})
    folder = qrels_folder(dataset, data_root)
    return BeirDataset(folder, corpus, queries, {PAIRS_SPLIT: own, **dataset_qrels(folder)})
