"""Atomic file writes: a crash never leaves a half-written output behind."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and move it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs should look like any other file
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def beside(output: str | Path, suffix: str) -> Path:
    """A file kept next to a stage output (its manifest, stored answers, verdicts): the output's name plus
    ``suffix``."""
    output = Path(output)
    return output.with_name(output.name + suffix)


def cache_root() -> Path:
    """``$HARDNEG_CACHE`` (default ~/.cache/hardneg): datasets, embeddings, BM25 indexes."""
    return Path(os.environ.get("HARDNEG_CACHE", "~/.cache/hardneg")).expanduser()


def write_json(path: str | Path, data: Any) -> None:
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def slug(text: str) -> str:
    """A file-name-safe label: stage outputs, answer stores, result files."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def save_figure(figure: Any, output: str | Path) -> Path:
    """A matplotlib figure laid out, written as PNG atomically (a report rebuilt mid-read never shows
    half a plot) and closed, since pyplot keeps every open figure alive."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_open(output, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)
    return Path(output)
