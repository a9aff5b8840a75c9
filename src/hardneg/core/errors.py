"""User-facing errors: the CLI prints them on one line and exits with status 2."""

from __future__ import annotations

import errno
from pathlib import Path


class HardnegError(Exception):
    """A problem the user can fix (bad input, missing model, unreachable server)."""


class DataError(HardnegError):
    """A problem located in an input file, printed as ``FILE:LINE: message``."""

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(str(self))

    def __reduce__(self):
        """Rebuilt from its parts (a Ray worker sends it back to the driver pickled)."""
        return (DataError, (self.path, self.line, self.message))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else f"{self.path}"
        return f"{where}: {self.message}"


class KeyedError(ValueError):
    """A config check across tables that names the key it is about (``phases.0.sources``): pydantic
    can place a field's error, not one found by a model validator, so the key travels with it."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only",
}
"""Write failures a user fixes outside hardneg: what finished is kept, a rerun goes on."""


NO_SPACE_TEXT = ("No space left on device", "os error 28", "Disk quota exceeded")
"""How libraries that wrap the OS error say it (safetensors: 'I/O error: No space left on device')."""


def storage_error(exc: BaseException, where: str | Path | None = None) -> HardnegError | None:
    """A full disk, a quota or a read-only file system, raised by us or by a library that wraps the
    OS error, as one line naming the path (else ``where``); None for any other error."""
    seen, current, code, filename = set(), exc, None, None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            code, filename = current.errno, current.filename
            break
        current = current.__cause__ or current.__context__
    if code is None and any(text in str(exc) for text in NO_SPACE_TEXT):
        code = errno.EDQUOT if "quota" in str(exc) else errno.ENOSPC
    if code is None:
        return None
    return HardnegError(
        f"{filename or where or 'a file'}: {STORAGE_ERRNOS[code]} (errno {code}); nothing half-written is "
        "kept: free space (or make it writable) and rerun, finished stages are reused"
    )
