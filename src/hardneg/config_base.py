"""What every settings object shares: strict pydantic, and the mark that keeps a setting out of
cache keys (``runtime``). Its own module so that stage configs can live in several."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


def comma_list(value: Any) -> Any:
    """'a,b' or ['a,b'] (a repeated flag) -> ['a', 'b']; '' or [] -> None."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value or None


class Settings(BaseModel):
    """Strict and immutable; a field's docstring is its description, which the CLI shows as help."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def runtime(default: Any, **kwargs: Any) -> Any:
    """A setting that changes how fast or where a stage runs, not what it makes: it stays out of
    cache keys, so raising a concurrency or moving to a GPU does not redo finished work."""
    return Field(default, json_schema_extra={"key": False}, **kwargs)


def key_settings(settings: BaseModel) -> dict[str, Any]:
    """The settings that enter a stage's cache key: every field but the ``runtime`` ones, recursively."""
    kept: dict[str, Any] = {}
    for name, info in type(settings).model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if extra.get("key") is False:
            continue
        value = getattr(settings, name)
        kept[name] = key_settings(value) if isinstance(value, BaseModel) else _plain(value)
    return kept


def _plain(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)
