"""Package names that load on first use (PEP 562): a light command (generate against a server, a
dry run) must not pay for importing torch because a package's face names a model class."""

from importlib import import_module
from typing import Any, Callable


def lazy_names(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``where[name]`` when ``name`` is first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(where[name]), name)

    return __getattr__
