"""The embedded back end: a GGUF model served in-process by xllamacpp (llama.cpp's own server) on
127.0.0.1, so offline generation goes through exactly the client code a remote endpoint gets."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hardneg.core.cpus import usable_cpus
from hardneg.core.errors import HardnegError
from hardneg.core.models import ALIASES, resolve_model
from hardneg.settings.llm import LLMSettings

LOOPBACK = "127.0.0.1"


def is_embedded(model: str) -> bool:
    """An alias of an installed GGUF or a path to a .gguf file is served here; anything else is
    a model name on some server and needs a base URL."""
    return model in ALIASES or model.lower().endswith(".gguf")


def gguf_path(model: str) -> Path:
    path = Path(resolve_model(model))
    if not path.is_file():
        raise HardnegError(f"{path}: GGUF model file not found")
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise HardnegError(f"{path}: not a GGUF model file (its first bytes are not 'GGUF')")
    return path


def _check_port_free(port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as exc:
            raise HardnegError(
                f"port {port} on {LOOPBACK} is taken ({exc.strerror}); "
                "choose another with --port, or 0 for a free one"
            ) from None


def llama_params(config: LLMSettings, slots: int, path: Path | None = None):
    """llama.cpp's settings for ``config.model`` (at ``path``, when already found) with ``slots``
    parallel requests, each with its context, on the threads ``config`` names (unset: the cores
    this process may use; a Ray task's reservation is in OMP_NUM_THREADS)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path or gguf_path(config.model))
    params.n_parallel = slots
    params.n_ctx = config.context_per_slot * slots
    params.cpuparams.n_threads = (
        config.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or usable_cpus()
    )
    params.cpuparams_batch.n_threads = params.cpuparams.n_threads
    params.verbosity = -1
    return params


@contextmanager
def embedded_server(config: LLMSettings) -> Iterator[str]:
    """Start llama.cpp's server for ``config.model`` and yield its OpenAI-compatible base URL."""
    import xllamacpp

    path = gguf_path(config.model)
    _check_port_free(config.port)
    params = llama_params(config, config.slots or config.concurrency, path)
    params.hostnames = [LOOPBACK]
    params.port = config.port
    try:
        server = xllamacpp.Server(params)
    except RuntimeError as exc:
        raise HardnegError(
            f"{path}: llama.cpp could not load this model or start its server on "
            f"{LOOPBACK}:{config.port} ({exc})"
        ) from None
    try:
        yield server.listening_address.rstrip("/") + "/v1"
    finally:
        del server  # the server's destructor stops its threads and frees the model
