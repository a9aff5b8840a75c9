"""The registry of stage kinds (ir_datasets-style: declared once, read everywhere). The built-in
kinds register here; a package adds its own with ``register(MyKind())`` or through the
``hardneg.stages`` entry point group, and a grid config can then name it like any other."""

from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import create_model

from hardneg.core.errors import HardnegError
from hardneg.settings.experiment import use_source_types
from hardneg.settings.sources import SourceSettings
from hardneg.stages.base import StageKind

KINDS: dict[str, StageKind] = {}
"""Kind name -> its one instance, in pipeline order (built-in kinds first)."""

ENTRY_POINTS = "hardneg.stages"
"""Entry point group of installed packages' stage kinds: each names a StageKind subclass or instance."""


def register(kind: StageKind | type[StageKind], replace: bool = False) -> StageKind:
    """Add a kind (an instance, or a class to instantiate); usable as a class decorator. A source
    kind becomes a table a grid's ``[sources.NAME]`` can hold."""
    instance = kind() if isinstance(kind, type) else kind
    for attribute in ("name", "folder", "config_type"):
        if not hasattr(instance, attribute):
            raise HardnegError(f"stage kind {type(instance).__name__}: declares no {attribute!r}")
    if instance.name == "list":
        raise HardnegError("a stage kind cannot be named 'list' (`hardneg stage list` lists the kinds)")
    if instance.name in KINDS and not replace and type(KINDS[instance.name]) is not type(instance):
        raise HardnegError(
            f"stage kind {instance.name!r} is registered already (by {type(KINDS[instance.name]).__module__})"
        )
    KINDS[instance.name] = instance
    if instance.source:
        _refresh_sources()
    return kind


def unregister(name: str) -> None:
    """Remove a kind (tests, or a plugin replaced at run time)."""
    kind = KINDS.pop(name, None)
    if kind is not None and kind.source:
        _refresh_sources()


def source_settings_type(kind: StageKind) -> type[SourceSettings]:
    """A source kind's grid table: its own class, or one made to hold its config under its name,
    whose ``upstream`` and ``check`` are the kind's."""
    if kind.source_settings is not None:
        return kind.source_settings
    made = create_model(  # a kind from outside declares only its config
        f"{type(kind).__name__}SourceSettings",
        __base__=SourceSettings,
        __module__=type(kind).__module__,
        **{kind.name: (kind.config_type, ...)},
    )
    made.kind = kind.name
    made.upstream = lambda self: kind.upstream(self)
    made.check = lambda self, name, sources: kind.check_source(name, self, sources)
    type(kind).source_settings = made
    return made


def _refresh_sources() -> None:
    use_source_types({name: source_settings_type(kind) for name, kind in source_kinds().items()})


def source_kinds() -> dict[str, StageKind]:
    """The kinds a grid source can be, by the table name that selects them ('mine', 'generate'...)."""
    return {kind.name: kind for kind in KINDS.values() if kind.source}


def kind_of(name: str) -> StageKind:
    if name not in KINDS:
        raise HardnegError(
            f"unknown stage kind {name!r} (registered: {', '.join(KINDS)}); a plugin's kind must be "
            f"installed where this process runs (entry point group {ENTRY_POINTS!r})"
        )
    return KINDS[name]


def kind_label(name: str) -> str:
    """How reports name a kind's stages ('mined negatives'); a kind not installed here by its name."""
    return KINDS[name].label if name in KINDS else name


def load_entry_points() -> None:
    """Register the kinds installed packages declare (once per process, after the built-in ones)."""
    for entry in entry_points(group=ENTRY_POINTS):
        try:
            register(entry.load())
        except Exception as exc:  # noqa: BLE001  (a broken plugin is named, not a traceback)
            raise HardnegError(f"stage kind plugin {entry.name!r} ({entry.value}): {exc}") from None
