"""A faster CPU bi-encoder: the model's whole sentence-transformers pipeline (transformer, pooling,
any Dense or Normalize module) exported to ONNX once per model content and run by ONNX Runtime,
optionally with int8 weights.

sentence-transformers' own ``backend="onnx"``/``"openvino"`` needs optimum-onnx or optimum-intel,
neither of which installs beside transformers 5; torch.onnx and onnxruntime do. Tokenizing stays
the model's own (``preprocess``), so truncation and prompts are exactly sentence-transformers'.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.io import cache_root

__all__ = ["BACKENDS", "OnnxEncoder", "backend_tag", "load_encoder", "onnx_model_file"]

BACKENDS = ("torch", "onnx", "onnx-int8")
RECIPE = "1"
"""Bumped when the export or quantization changes what a backend computes: it is in both cache keys."""
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
DONE = "done.json"


def backend_tag(backend: str) -> str:
    """What an embeddings cache key records of the backend ('torch' stays out: older keys hold)."""
    return "" if backend == "torch" else f"{backend}/{RECIPE}"


def require_onnx(*modules: str) -> None:
    for module in modules:
        try:
            __import__(module)
        except ModuleNotFoundError:
            raise HardnegError(f"the ONNX backends need {module}: pip install 'hardneg[onnx]'") from None


def _pipeline(model):
    """The torch module torch.onnx traces: named tensors in, sentence embeddings out."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            features = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                features["token_type_ids"] = token_type_ids
            return self.model(features)["sentence_embedding"]

    return Pipeline().eval()


@contextmanager
def _quiet():
    """The exporter's and quantizer's warnings (torchvision absent, a pre-processing hint) say
    nothing about the result: kept off the user's screen while a model is built."""
    loggers = [logging.getLogger(), logging.getLogger("torch.onnx")]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def _tensor_names(features: dict) -> tuple[str, ...]:
    import torch

    names = tuple(name for name, value in features.items() if isinstance(value, torch.Tensor))
    unknown = sorted(set(names) - set(INPUTS))
    if unknown or not {"input_ids", "attention_mask"} <= set(names):
        raise HardnegError(
            f"the ONNX backends take text models fed {', '.join(INPUTS)}; this one takes {names}"
        )
    return tuple(name for name in INPUTS if name in names)


def export(model, path: Path) -> None:
    """torch.onnx's dynamo exporter, batch and sequence length left dynamic."""
    import torch

    sample = model.preprocess(
        ["a short sample", "a somewhat longer sample sentence to export the model with"]
    )
    names = _tensor_names(sample)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with torch.no_grad():
        program = torch.onnx.export(
            _pipeline(model),
            (),
            kwargs={name: sample[name] for name in names},
            input_names=list(names),
            output_names=["sentence_embedding"],
            dynamic_shapes={name: {0: batch, 1: sequence} for name in names},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    program.save(str(path))


def quantize(source: Path, target: Path) -> None:
    """Dynamic int8: weights per output channel (per-tensor lost too much on MiniLM), activations
    quantized on the fly; only weight MatMuls (attention's activation products stay fp32)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        source,
        target,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"MatMulConstBOnly": True},
    )


def onnx_model_file(model, fingerprint: str, backend: str) -> Path:
    """The model's ONNX file for ``backend``, built once per model content in $HARDNEG_CACHE/onnx:
    in a temporary folder renamed into place with its marker inside, so a half-built one never counts."""
    key = hashlib.sha256(
        json.dumps({"model": fingerprint, "backend": backend_tag(backend)}).encode()
    ).hexdigest()[:32]
    final = cache_root() / "onnx" / key
    if (final / DONE).exists():
        return final / "model.onnx"
    require_onnx("onnxruntime", "onnx", "onnxscript")
    source = onnx_model_file(model, fingerprint, "onnx") if backend == "onnx-int8" else None
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # no marker: an interrupted build by hand or a crashed copy, not to be trusted
        shutil.rmtree(final)
    building = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        with _quiet():
            if source is None:
                export(model, building / "model.onnx")
            else:
                quantize(source, building / "model.onnx")
        (building / DONE).write_text(
            json.dumps({"model": fingerprint, "backend": backend, "recipe": RECIPE}) + "\n"
        )
        try:
            os.rename(building, final)
        except OSError:
            if not (final / DONE).exists():  # another process finished first, or a real failure
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return final / "model.onnx"


class OnnxEncoder:
    """The part of SentenceTransformer's interface hardneg encodes through, run by ONNX Runtime on
    the CPU with as many threads as torch uses, so that a comparison is like for like."""

    def __init__(self, model, fingerprint: str, backend: str):
        require_onnx("onnxruntime")
        import onnxruntime
        import torch

        self.model, self.backend = model, backend
        self.path = onnx_model_file(model, fingerprint, backend)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle threads sleep instead of spinning: on cores shared with other work, spinning cost
        # int8 a fifth of its throughput (1.36x torch against 1.73x, measured side by side).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = [node.name for node in self.session.get_inputs()]

    @property
    def max_seq_length(self) -> int | None:
        return self.model.max_seq_length

    def get_embedding_dimension(self) -> int | None:
        return self.model.get_embedding_dimension()

    def similarity_pairwise(self, a, b):
        return self.model.similarity_pairwise(a, b)

    def _run(self, texts: list[str], prompt: str | None) -> np.ndarray:
        features = self.model.preprocess(texts, prompt=prompt)
        if "prompt_length" in features:
            raise HardnegError("a prompt left out of pooling (include_prompt=False) needs backend 'torch'")
        return self.session.run(None, {name: features[name].numpy() for name in self.inputs})[0]

    def encode(
        self,
        texts,
        batch_size=32,
        prompt=None,
        normalize_embeddings=False,
        show_progress_bar=False,
        pool=None,
        **_,
    ) -> np.ndarray:
        """Longest first in batches, as sentence-transformers does, returned in the input's order."""
        from tqdm.auto import tqdm

        texts = [texts] if isinstance(texts, str) else list(texts)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        parts = []
        for start in tqdm(range(0, len(texts), batch_size), desc="Batches", disable=not show_progress_bar):
            parts.append(self._run([texts[i] for i in order[start : start + batch_size]], prompt))
        dim = self.get_embedding_dimension()
        embeddings = np.zeros((len(texts), dim or 0), dtype=np.float32)
        if parts:
            embeddings = np.empty((len(texts), parts[0].shape[1]), dtype=np.float32)
            embeddings[np.asarray(order)] = np.concatenate(parts)
        if getattr(self.model, "truncate_dim", None):
            embeddings = embeddings[:, : self.model.truncate_dim]
        if normalize_embeddings:
            embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        return embeddings


def load_encoder(name: str, max_seq_length: int | None = None, device: str = "cpu", backend: str = "torch"):
    """A SentenceTransformer for 'torch'; for an ONNX backend, the same model run by ONNX Runtime."""
    from hardneg.core.models import load_sentence_transformer, model_fingerprint

    if backend == "torch":
        return load_sentence_transformer(name, max_seq_length, device=device)
    if device != "cpu":
        raise HardnegError(f"backend {backend!r} runs on the CPU: use device 'cpu' or backend 'torch'")
    return OnnxEncoder(
        load_sentence_transformer(name, max_seq_length, device="cpu"), model_fingerprint(name), backend
    )
