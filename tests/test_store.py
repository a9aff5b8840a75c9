"""The memory-mapped corpus store: same answers as the in-memory dict, never stale, never half built."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from helpers import TINY_CORPUS, shared_dataset, write_beir

from hardneg.settings.data import PairsSettings
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.settings.mining import FilterSettings, MineSettings
from hardneg.settings.retrieval import BM25Settings
from hardneg.data import store as store_module
from hardneg.data import store_build as build_module
from hardneg.data.beir import BeirDataset, Problems, load_beir, read_corpus, validate_beir
from hardneg.data.store import CorpusStore, store_root
from hardneg.data.store_build import open_corpus
from hardneg.core.errors import DataError, HardnegError
from hardneg.evaluation.evaluate import evaluate
from hardneg.mining.mine import mine
from hardneg.data.pairs import build_pairs
from hardneg.retrieval import BM25Retriever

SRC = Path(__file__).resolve().parents[1] / "src"


def _age(path: Path, seconds: float = 60) -> None:
    """Backdate a file so its stat record is trusted (outside the racy window)."""
    old = time.time() - seconds
    os.utime(path, (old, old))


def _published() -> list[Path]:
    return sorted(p for p in store_root().iterdir() if p.is_dir() and not p.name.startswith((".", "by-path")))


def test_store_is_a_read_only_mapping_in_file_order(tiny_beir):
    corpus = load_beir(tiny_beir).corpus
    assert isinstance(corpus, CorpusStore)
    expected = read_corpus(tiny_beir / "corpus.jsonl", Problems(strict=True))
    assert list(corpus) == list(expected) and len(corpus) == 5
    assert dict(corpus.items()) == expected and list(corpus.values()) == list(expected.values())
    assert corpus["d3"] == expected["d3"] and "d9" not in corpus and 3 not in corpus
    with pytest.raises(KeyError):
        corpus["d9"]
    assert corpus.ids.take([4, 0]) == ["d5", "d1"] and corpus.ids.index("d2") == 1
    assert list(corpus.iter_texts()) == [doc.full_text for doc in expected.values()]


def test_many_batches_and_hash_collisions_still_find_every_id(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BATCH_ROWS", 7)
    monkeypatch.setattr(store_module, "id_hash", lambda doc_id: len(doc_id))  # every id of a length collides
    docs = {f"doc{i}": {"title": f"t{i}", "text": f"text number {i}"} for i in range(40)}
    corpus = load_beir(write_beir(tmp_path / "many", corpus=docs, qrels={"test": {"q1": {"doc3": 1}}})).corpus
    assert list(corpus) == list(docs)
    assert all(corpus[d].text == docs[d]["text"] for d in docs)
    assert list(corpus.rows_of(["doc39", "doc0", "doc7"])) == [39, 0, 7]


def _slow_only(monkeypatch) -> None:
    def refuse(path, folder):
        raise build_module._Changed

    monkeypatch.setattr(build_module, "_fast_build", refuse)


@pytest.mark.parametrize("batch_rows", [3, 8192])
def test_the_fast_build_stores_what_the_validating_build_stores(tmp_path, monkeypatch, batch_rows):
    """Arrow's JSON reader and the Python loop give the same rows, ids, hashes and content key."""
    monkeypatch.setattr(store_module, "BATCH_ROWS", batch_rows)
    docs = {**{f"d{i}": {"title": f"  title {i}\t", "text": f"text \u00e9 {i}", "extra": [i]} for i in range(10)},
            "untitled": {"text": "no title"}, "null-title": {"title": None, "text": "null title"}}  # fmt: skip
    source = write_beir(tmp_path / "docs", corpus=docs)
    built = {}
    real_stream = build_module._stream
    for name in ("fast", "slow"):
        monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / f"cache-{name}"))
        calls = Counter()
        monkeypatch.setattr(build_module, "_stream", lambda *a: (calls.update(["slow"]), real_stream(*a))[1])
        if name == "slow":
            _slow_only(monkeypatch)
        corpus = load_beir(source).corpus
        assert calls["slow"] == (name == "slow")
        built[name] = (corpus, np.load(corpus.folder / "id_hashes.npy"), np.load(corpus.folder / "id_rows.npy"))
    (fast, fast_hashes, fast_rows), (slow, slow_hashes, slow_rows) = built["fast"], built["slow"]
    assert fast.content_key == slow.content_key and fast.folder.name == slow.folder.name
    assert list(fast.items()) == list(slow.items()) and fast["d3"].title == "title 3" and fast["null-title"].title == ""
    assert np.array_equal(fast_hashes, slow_hashes) and np.array_equal(fast_rows, slow_rows)
    assert [len(fast._batches[i]) for i in range(len(fast._batches))] == [len(b) for b in slow._batches]


@pytest.mark.parametrize("line", [
    '{"_id": 7, "text": "a number id"}',  # accepted, as the string "7", by the validating path only
    '{"_id": "d1", "text": "a repeated id"}',
    '{"_id": "x1", "text": 3}',
    '{"_id": "", "text": "empty id"}',
    '{"text": "no id"}',
    '{"_id": "x2", "text": "two objects"} {"_id": "x3", "text": "on a line"}',
    "",  # a blank line
    '{"_id": "x4", "text": "not UTF-8: BADBYTE"}',
])  # fmt: skip
def test_anything_unusual_goes_to_the_validating_build(tiny_beir, line):
    """The fast path hands over whenever the file is not plain, so both accept the same files."""
    with (tiny_beir / "corpus.jsonl").open("ab") as out:
        out.write(line.encode().replace(b"BADBYTE", b"\xff") + b"\n")
        out.write(json.dumps({"_id": "last", "text": "after it"}).encode() + b"\n")
    folder = Path(store_root())
    with pytest.raises(build_module._Changed):
        partial = folder / "probe"
        partial.mkdir(parents=True)
        build_module._fast_build(tiny_beir / "corpus.jsonl", partial)
    fresh = Problems(strict=False)
    corpus = open_corpus(tiny_beir / "corpus.jsonl", fresh)
    expected = Problems(strict=False)
    reference = read_corpus(tiny_beir / "corpus.jsonl", expected)
    assert [(p.line, p.message) for p in fresh.found] == [(p.line, p.message) for p in expected.found]
    assert dict(corpus.items()) == reference


@pytest.mark.parametrize("extra", [None, ""], ids=["fast", "validating"])
def test_a_build_hands_back_the_memory_arrow_kept(tiny_beir, monkeypatch, extra):
    """Arrow's allocator keeps a parser's freed blocks for reuse: a grid building one store per test
    set carried every build's into the stages after it (issue 16's grid benchmark, 1.24x)."""
    import pyarrow as pa

    pool, handed_back = pa.default_memory_pool(), []

    class Watched:
        def release_unused(self) -> None:
            handed_back.append(True)
            pool.release_unused()

    monkeypatch.setattr(build_module.pa, "default_memory_pool", Watched)
    if extra is not None:
        with (tiny_beir / "corpus.jsonl").open("a") as out:
            out.write(extra + "\n")
    open_corpus(tiny_beir / "corpus.jsonl", Problems(strict=False))
    assert handed_back  # once the build is over, whichever path built it


def test_validation_streams_and_reports_duplicates_against_the_first_line(tiny_beir):
    with (tiny_beir / "corpus.jsonl").open("a") as out:
        out.write(json.dumps({"_id": "d2", "text": "again"}) + "\n")
        out.write(json.dumps({"_id": "d6"}) + "\n")
        out.write("{bad\n")
    dataset, problems = validate_beir(tiny_beir)
    assert [str(p) for p in problems[:3]] == [
        f"{tiny_beir / 'corpus.jsonl'}:6: duplicate _id 'd2' (first on line 2)",
        f"{tiny_beir / 'corpus.jsonl'}:7: missing field 'text'",
        f"{tiny_beir / 'corpus.jsonl'}:8: invalid JSON (Expecting property name enclosed in double quotes at column 2)",
    ]
    assert list(dataset.corpus) == list(TINY_CORPUS) and dataset.corpus["d2"].text == TINY_CORPUS["d2"]["text"]
    assert _published() == []  # a corpus with problems is never cached
    with pytest.raises(DataError, match=r"corpus.jsonl:6: duplicate _id 'd2'"):
        load_beir(tiny_beir)


def test_a_second_load_reuses_the_store_without_reading_the_file(tiny_beir, monkeypatch):
    _age(tiny_beir / "corpus.jsonl")
    first = load_beir(tiny_beir).corpus
    monkeypatch.setattr(build_module, "build_store", lambda *a: pytest.fail("built again"))
    again = load_beir(tiny_beir).corpus
    assert again.folder == first.folder and dict(again.items()) == dict(first.items())


@pytest.mark.parametrize("edit", ["append", "same size and mtime"])
def test_a_changed_corpus_is_rebuilt_never_served_stale(tiny_beir, edit):
    path = tiny_beir / "corpus.jsonl"
    _age(path)
    before = load_beir(tiny_beir).corpus
    assert before["d1"].text.startswith("Photovoltaic")
    stat = path.stat()
    if edit == "append":
        with path.open("a") as out:
            out.write(json.dumps({"_id": "d6", "title": "", "text": "new"}) + "\n")
    else:  # same bytes count, mtime put back: only ctime (and the content) tell
        path.write_text(path.read_text().replace("Photovoltaic", "Photovoltaiq"))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    after = load_beir(tiny_beir).corpus
    assert after.folder != before.folder
    assert (len(after), after["d1"].text[:12]) == ((6, "Photovoltaic") if edit == "append" else (5, "Photovoltaiq"))
    assert before["d1"].text.startswith("Photovoltaic")  # the old store is untouched


def test_a_touched_but_unchanged_corpus_keeps_its_store(tiny_beir):
    first = load_beir(tiny_beir).corpus
    os.utime(tiny_beir / "corpus.jsonl")
    again = load_beir(tiny_beir).corpus  # read again (the stat changed), same content, same store
    assert again.folder == first.folder and not any(p.name.startswith(".tmp-") for p in store_root().iterdir())


def test_a_build_failing_before_its_rename_leaves_nothing(tiny_beir, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    real = build_module._write_index
    monkeypatch.setattr(build_module, "_write_index", disk_full)
    with pytest.raises(HardnegError, match=r"cannot build the corpus store .* \(no space left on the device\)"):
        load_beir(tiny_beir)
    assert list(store_root().iterdir()) == []
    monkeypatch.setattr(build_module, "_write_index", real)  # not undo(): that would drop the isolated cache
    assert len(load_beir(tiny_beir).corpus) == 5


def test_a_killed_build_leaves_nothing_a_rerun_trusts(tiny_beir):
    """SIGKILL in the middle of writing the id index: a temporary folder stays, no store."""
    script = (
        "import os, signal, sys\n"
        "from hardneg.data import store\n"
        "from hardneg.data.beir import load_beir\n"
        "from hardneg.data import store_build\n"
        "real = store_build._write_index\n"
        "def killed(folder, hashes):\n"
        "    real(folder, hashes)\n"
        "    (folder / 'meta.json').write_text('{}')  # even a half-written meta must not be trusted\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "store_build._write_index = killed\n"
        "load_beir(sys.argv[1])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", script, str(tiny_beir)], env=env)
    assert done.returncode == -9
    leftovers = [p for p in store_root().iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and _published() == []
    corpus = load_beir(tiny_beir).corpus  # rebuilt from scratch; the dead build's folder is cleared
    assert dict(corpus.items()) == read_corpus(tiny_beir / "corpus.jsonl", Problems(strict=True))
    assert not any(p.name.startswith(".tmp-") for p in store_root().iterdir())
    assert _published() == [corpus.folder]


def test_a_store_survives_pickling(tiny_beir):
    import pickle

    corpus = load_beir(tiny_beir).corpus
    assert dict(pickle.loads(pickle.dumps(corpus)).items()) == dict(corpus.items())


def test_open_corpus_reports_a_missing_file(tmp_path):
    problems = Problems(strict=False)
    assert open_corpus(tmp_path / "corpus.jsonl", problems) == {}
    assert [p.message for p in problems.found] == ["file not found"]


def _in_memory(dataset: BeirDataset) -> BeirDataset:
    """Today's dataset: the corpus as a dict of Documents, read by the old parser."""
    corpus = read_corpus(dataset.path / "corpus.jsonl", Problems(strict=True))
    return BeirDataset(dataset.path, corpus, dataset.queries, dataset.qrels)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["scifact", "nfcorpus"])
def test_bm25_evaluation_and_mining_from_the_store_equal_the_dict(name):
    stored = load_beir(shared_dataset(name))
    memory = _in_memory(stored)
    assert isinstance(stored.corpus, CorpusStore) and list(stored.corpus) == list(memory.corpus)
    config = EvaluateSettings(dataset=name, retriever="bm25")
    from_store = evaluate(config, stored, show_progress=False)
    from_store_cached = evaluate(config, load_beir(shared_dataset(name)), show_progress=False)
    from_dict = evaluate(config, memory, show_progress=False)
    assert from_store.per_query == from_dict.per_query == from_store_cached.per_query
    assert from_store.metrics == from_dict.metrics

    pairs = build_pairs(memory, PairsSettings(dataset=name, split="train", max_pairs=300))
    filters = FilterSettings(relative_margin=0.1)  # scores positives through the index rows too
    mine_config = MineSettings(dataset=name, num_negatives=5, sampling="random", seed=3, filters=filters)
    mined = [mine(pairs, data, mine_config, show_progress=False) for data in (stored, memory)]
    assert [t.model_dump() for t in mined[0].triplets] == [t.model_dump() for t in mined[1].triplets]
    assert mined[0].counts == mined[1].counts


def _count_reads(monkeypatch) -> Counter:
    """Counts every call that reads texts out of a corpus store, from now on."""
    reads: Counter = Counter()
    for name in ("batches", "__getitem__", "values", "items"):
        real = getattr(CorpusStore, name)
        monkeypatch.setattr(CorpusStore, name, lambda self, *a, _real=real, _name=name, **k: (reads.update([_name]), _real(self, *a, **k))[1])
    return reads


def test_a_cached_bm25_index_reads_no_text(tiny_beir, monkeypatch):
    dataset = load_beir(tiny_beir)
    first = BM25Retriever(dataset.corpus, BM25Settings(), show_progress=False)
    reads = _count_reads(monkeypatch)
    again = BM25Retriever(load_beir(tiny_beir).corpus, BM25Settings(), show_progress=False)
    assert "load_index_s" in again.timings and not reads
    queries = dataset.split_queries("test")
    assert again.search(queries, 3) == first.search(queries, 3) and not reads


def test_dense_retrieval_from_the_store_equals_the_dict(tmp_path, tiny_model_path, monkeypatch):
    """Texts fetched shard by shard from the store; a cached run reads none."""
    from hardneg.settings.retrieval import DenseSettings
    from hardneg.retrieval import DenseRetriever
    from hardneg.retrieval.scorers import DenseScorer

    folder = shared_dataset("scifact")
    lines = (folder / "corpus.jsonl").read_text().splitlines()[:200]
    subset = tmp_path / "scifact-200"
    (subset / "qrels").mkdir(parents=True)
    (subset / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    (subset / "queries.jsonl").write_text((folder / "queries.jsonl").read_text())
    first_id = json.loads(lines[0])["_id"]
    (subset / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\n1\t{first_id}\t1\n")
    stored = load_beir(subset)
    memory = _in_memory(stored)
    settings = DenseSettings(cache_embeddings=False, max_seq_length=64)
    runs = [DenseRetriever(d.corpus, str(tiny_model_path), settings, show_progress=False) for d in (stored, memory)]
    assert np.array_equal(runs[0].corpus_embeddings, runs[1].corpus_embeddings)
    queries = dict(list(stored.queries.items())[:20])
    assert runs[0].search(queries, 10) == runs[1].search(queries, 10)
    items = [(qid, text, doc_id) for qid, text in queries.items() for doc_id in list(stored.corpus)[::40]]
    assert np.array_equal(DenseScorer(runs[0]).score(items), DenseScorer(runs[1]).score(items))

    cached = settings.model_copy(update={"cache_embeddings": True})
    first = DenseRetriever(stored.corpus, str(tiny_model_path), cached, show_progress=False)
    reads = _count_reads(monkeypatch)
    again = DenseRetriever(load_beir(subset).corpus, str(tiny_model_path), cached, show_progress=False)
    assert np.array_equal(again.corpus_embeddings, first.corpus_embeddings) and not reads
    assert np.array_equal(again.corpus_embeddings, runs[1].corpus_embeddings)
    assert isinstance(first.corpus_embeddings, np.memmap) and isinstance(again.corpus_embeddings, np.memmap)  # no RAM copy
    assert again.search(queries, 10) == runs[1].search(queries, 10)


def test_mining_on_a_cached_index_reads_only_the_texts_it_writes(tmp_path, monkeypatch):
    """Candidates are compared with their positive by the stored passage fingerprints."""
    echo = {"title": "SOLAR panels", "text": "Photovoltaic  cells convert sunlight\ninto electricity."}  # d1 again
    folder = write_beir(tmp_path / "tiny", {**TINY_CORPUS, "d1-copy": echo})
    config = MineSettings(dataset="tiny", num_negatives=2, sampling="top")
    dataset = load_beir(folder)
    pairs = build_pairs(dataset, PairsSettings(dataset="tiny", split="test"))
    first = mine(pairs, dataset, config, show_progress=False)
    # d1-copy is d1's text: left out for (q1, d1), and for (q1, d5) too, d1 being q1's other positive
    assert (dataset.corpus.folder / "passage_keys.npy").is_file() and first.counts["same_text_excluded"] == 2
    reads = _count_reads(monkeypatch)
    again = mine(pairs, load_beir(folder), config, show_progress=False)
    assert [t.model_dump() for t in again.triplets] == [t.model_dump() for t in first.triplets]
    assert again.counts == first.counts
    written = sum(len(t.negatives) for t in again.triplets)
    assert written and reads == Counter(__getitem__=written)
    in_memory = mine(pairs, _in_memory(dataset), config, show_progress=False)
    assert [t.model_dump() for t in in_memory.triplets] == [t.model_dump() for t in first.triplets]


@pytest.mark.integration
@pytest.mark.parametrize("name", ["scifact", "nfcorpus"])
def test_dense_evaluation_and_mining_from_the_store_equal_the_dict(name, tiny_model_path):
    """The whole corpus, streamed shard by shard from the store, against today's dict (a tiny model keeps it quick)."""
    from hardneg.settings.retrieval import DenseSettings

    stored = load_beir(shared_dataset(name))
    memory = _in_memory(stored)
    dense = DenseSettings(max_seq_length=32, cache_embeddings=False, batch_size=128)
    config = EvaluateSettings(dataset=name, retriever=str(tiny_model_path), dense=dense)
    results = [evaluate(config, data, show_progress=False) for data in (stored, memory)]
    assert results[0].per_query == results[1].per_query and results[0].metrics == results[1].metrics

    pairs = build_pairs(memory, PairsSettings(dataset=name, split="train", max_pairs=200))
    mine_config = MineSettings(dataset=name, method="dense", model=str(tiny_model_path), num_negatives=3, dense=dense,
                             filters=FilterSettings(relative_margin=0.1))  # fmt: skip
    mined = [mine(pairs, data, mine_config, show_progress=False) for data in (stored, memory)]
    assert [t.model_dump() for t in mined[0].triplets] == [t.model_dump() for t in mined[1].triplets]
    assert mined[0].counts == mined[1].counts and mined[0].triplets
