"""Top-k backends (torch, FAISS exact, opt-in approximate indexes with their recall) and corpus
encoding over several devices."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import TINY_CORPUS

from hardneg.settings.base import key_settings
from hardneg.settings.evaluation import EvaluateSettings
from hardneg.settings.retrieval import DenseSettings
from hardneg.data.beir import Document
from hardneg.retrieval.search import exact_top_k, top_k

pytest.importorskip("faiss")


def vectors(rows: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def test_faiss_exact_search_equals_the_torch_path():
    corpus, queries = vectors(5000), vectors(60, seed=1)
    torch_scores, torch_indices, info = top_k(queries, corpus, 100, "exact", "torch", corpus_chunk_size=700)
    faiss_scores, faiss_indices, faiss_info = top_k(queries, corpus, 100, "exact", "faiss")
    assert info["index"] == "exact (torch)" and faiss_info["index"] == "IndexFlatIP"
    np.testing.assert_array_equal(torch_indices, faiss_indices)  # random vectors: no ties
    np.testing.assert_allclose(torch_scores, faiss_scores, atol=1e-5)


@pytest.mark.parametrize("kind, name", [("hnsw", "IndexHNSWFlat"), ("ivf", "IndexIVFFlat")])
def test_an_approximate_index_reports_its_recall_against_exact_search(kind, name):
    corpus, queries = vectors(4000), vectors(150, seed=2)
    scores, indices, info = top_k(queries, corpus, 10, kind)
    _, truth = exact_top_k(queries, corpus, 10)
    sample = info["recall_queries"]
    assert info["index"] == name and info["k"] == 10 and sample == 100
    measured = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(indices, truth)])
    assert 0.5 < info["recall_at_k"] <= 1.0 and abs(info["recall_at_k"] - measured) < 0.1
    assert indices.shape == (150, 10) and np.all(np.diff(scores, axis=1) <= 1e-6)  # best first


def test_where_to_search_is_runtime_but_an_approximate_index_changes_the_key():
    base = key_settings(DenseSettings())
    assert key_settings(DenseSettings(search_backend="faiss", devices="cpu,cpu")) == base
    assert key_settings(DenseSettings(search="hnsw")) != base
    assert DenseSettings(devices="cuda:0, cuda:1").devices == ["cuda:0", "cuda:1"]


@pytest.mark.slow  # loads the real MiniLM
def test_evaluation_with_an_approximate_index_records_it(tmp_path, tiny_beir):
    from hardneg.evaluation import evaluate

    config = EvaluateSettings(dataset=str(tiny_beir), retriever="minilm-l6", dense=DenseSettings(search="hnsw"))
    result = evaluate(config, show_progress=False)
    assert result.settings["index"]["index"] == "IndexHNSWFlat" and 0 <= result.settings["index"]["recall_at_k"] <= 1


@pytest.mark.slow  # the real MiniLM, in this process and in a pool of two
def test_encoding_on_two_processes_gives_the_embeddings_of_one(tmp_path):
    from hardneg.core.models import load_sentence_transformer
    from hardneg.retrieval.dense import encode_corpus

    corpus = {f"{doc}-{i}": Document(d["title"], f"{d['text']} ({i})") for i in range(6) for doc, d in TINY_CORPUS.items()}
    texts = [d.full_text for d in corpus.values()]
    model = load_sentence_transformer("minilm-l6", 64)
    one = encode_corpus(model, list(corpus), texts, DenseSettings(batch_size=8), None, show_progress=False)
    two = encode_corpus(model, list(corpus), texts, DenseSettings(batch_size=8, devices="cpu,cpu"), None, show_progress=False)
    assert one.shape == two.shape == (30, 384)
    assert float(np.abs(one - two).max()) < 1e-5
    assert json.dumps(DenseSettings(devices="cpu,cpu").model_dump(mode="json")["devices"]) == '["cpu", "cpu"]'
