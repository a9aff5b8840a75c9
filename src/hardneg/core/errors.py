"""User-facing errors: the CLI prints them on one line and exits with status 2."""

from __future__ import annotations

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
