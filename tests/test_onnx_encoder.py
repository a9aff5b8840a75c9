"""The ONNX backends: the same vectors as torch (int8: close ones), built once per model content,
never from a half-built cache, and never mistaken for torch's embeddings in the cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pydantic import ValidationError

pytest.importorskip("onnxruntime")

from hardneg.settings.retrieval import DenseSettings
from hardneg.core.errors import HardnegError  # noqa: E402
from hardneg.core.models import load_sentence_transformer, model_fingerprint  # noqa: E402
from hardneg.retrieval import onnx_encoder  # noqa: E402
from hardneg.retrieval.onnx_encoder import OnnxEncoder, load_encoder  # noqa: E402

TEXTS = [
    "how do solar cells make electricity",
    "Yeast makes dough rise before baking bread in an oven. " * 12,  # longer than max_seq_length
    "x",
    "Turbines turn wind into electrical energy on farms.",
    "",
]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def one_export_per_module(shared_cache, monkeypatch):
    """An export takes seconds: the tests of this module share one cache (each test states what it needs)."""
    monkeypatch.setenv("HARDNEG_CACHE", str(shared_cache))


def _torch(path, **kwargs) -> np.ndarray:
    return load_sentence_transformer(str(path), 64).encode(TEXTS, batch_size=2, **kwargs)


def test_fp32_onnx_gives_torchs_vectors(tiny_model_path):
    encoder = load_encoder(str(tiny_model_path), 64, backend="onnx")
    assert isinstance(encoder, OnnxEncoder)
    for normalize in (False, True):
        expected = _torch(tiny_model_path, normalize_embeddings=normalize)
        got = encoder.encode(TEXTS, batch_size=2, normalize_embeddings=normalize)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 1e-4
    assert encoder.encode([], batch_size=2).shape == (0, encoder.get_embedding_dimension())


@pytest.mark.slow  # exports and loads the real MiniLM
def test_int8_stays_close_to_torch():
    """On MiniLM, whose int8 weights were measured on SciFact (docs/benchmarks.md); a random tiny
    model says nothing about quantization error. Real sentences: a lone 'x' drifts more (0.98)."""
    sentences = [TEXTS[0], TEXTS[1], TEXTS[3]]
    encoder = load_encoder("minilm-l6", 128, backend="onnx-int8")
    expected = load_sentence_transformer("minilm-l6", 128).encode(sentences, normalize_embeddings=True)
    got = encoder.encode(sentences, batch_size=2, normalize_embeddings=True)
    assert np.einsum("ij,ij->i", got, expected).min() > 0.99


def test_the_export_is_built_once_and_reused(tiny_model_path, monkeypatch, tmp_path):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))
    first = load_encoder(str(tiny_model_path), 64, backend="onnx").path
    monkeypatch.setattr(onnx_encoder, "export", lambda *a: pytest.fail("exported again"))
    assert load_encoder(str(tiny_model_path), 64, backend="onnx").path == first
    assert not [p for p in first.parent.parent.iterdir() if p.name.startswith(".")]  # no leftover temp folder


def test_a_half_built_cache_is_rebuilt(tiny_model_path):
    model = load_sentence_transformer(str(tiny_model_path), 64)
    path = onnx_encoder.onnx_model_file(model, model_fingerprint(str(tiny_model_path)), "onnx")
    (path.parent / onnx_encoder.DONE).unlink()  # as if the build had stopped before its marker
    path.write_bytes(b"truncated")
    encoder = load_encoder(str(tiny_model_path), 64, backend="onnx")
    assert encoder.path == path and (path.parent / onnx_encoder.DONE).exists()
    assert np.abs(encoder.encode(TEXTS, batch_size=2) - _torch(tiny_model_path)).max() < 1e-4


def test_the_backend_is_in_the_embeddings_key():
    from hardneg.retrieval.dense import embedding_key

    keys = {b: embedding_key("m", DenseSettings(backend=b), ["d1"], ["text"]) for b in onnx_encoder.BACKENDS}
    assert len(set(keys.values())) == 3


def test_dense_retrieval_and_text_scorer_take_the_backend(tiny_beir, tiny_model_path):
    from hardneg.data.beir import load_beir
    from hardneg.combining.filtering import load_text_scorer
    from hardneg.retrieval import DenseRetriever

    corpus = load_beir(tiny_beir).corpus
    runs = {}
    for backend in ("torch", "onnx"):
        retriever = DenseRetriever(corpus, str(tiny_model_path), DenseSettings(backend=backend), show_progress=False)
        runs[backend] = retriever.search({"q1": "solar electricity"}, 3)["q1"]
    assert list(runs["onnx"]) == list(runs["torch"])
    assert np.allclose(list(runs["onnx"].values()), list(runs["torch"].values()), atol=1e-4)
    scorer = load_text_scorer(f"dense:{tiny_model_path}", 8, False, backend="onnx")
    assert isinstance(scorer.model, OnnxEncoder)
    assert scorer.score(["solar"], ["sunlight"]).shape == (1,)


def test_onnx_runs_on_the_cpu_only():
    with pytest.raises(ValidationError, match="CPU"):
        DenseSettings(backend="onnx", device="cuda")
    with pytest.raises(ValidationError, match="CPU"):
        DenseSettings(backend="onnx-int8", devices="cpu,cpu")


@pytest.mark.parametrize("library", ["onnxruntime", "onnxscript"])
def test_a_missing_library_names_the_extra(tiny_model_path, monkeypatch, tmp_path, library):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path))  # nothing built yet: the exporter is needed
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(HardnegError, match=rf"need {library}: pip install 'hardneg\[onnx\]'"):
        load_encoder(str(tiny_model_path), 64, backend="onnx")
