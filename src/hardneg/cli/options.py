"""Command-line options derived from a config class: a setting is declared once, in its pydantic
field (type, default, constraints, docstring), so a command's flags cannot drift from its config.
Pydantic does the validation, so a bad value is one line naming the flag, as any user error."""

from __future__ import annotations

import inspect
import re
import types
from typing import Any, Callable, Literal, Optional, Union, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from rich.markup import escape

from hardneg.cli.common import one_line, parse_key_values
from hardneg.core.errors import HardnegError

_UNSET: Any = object()
_BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
_NOTES = {
    "dict": "KEY=VALUE (JSON value). Repeatable.",
    "list": "Repeatable.",
    "commas": "Comma-separated.",
    "none": "None is spelled 'none'.",
}


class Flag:
    """Where a field's command-line form departs from what its annotation implies.

    ``names``: spellings; any '--' name replaces the derived ``--field-name`` (a bool's may be
    '--on/--off'), short ones ('-n') are added to it. ``note``: a meaning only the CLI has.
    ``convert``: CLI value -> field value. ``switch``: a bare flag setting the field to this value
    (absent: the field keeps its default). ``repeat``: many values; the command builds a config per
    value and passes it to ``build``."""

    def __init__(
        self,
        *names: str,
        note: str = "",
        convert: Callable[[Any], Any] | None = None,
        switch: Any = _UNSET,
        repeat: bool = False,
    ) -> None:
        self.names, self.note, self.convert, self.switch, self.repeat = names, note, convert, switch, repeat


def zero_means_none(value: int | None) -> int | None:
    """For an optional count whose CLI cannot spell None: 0 stands for it."""
    return value or None


class _Option:
    """One CLI option: the field(s) it sets, its spelling, and how its value reaches the config."""

    def __init__(
        self,
        name: str,
        path: tuple[str, ...],
        info: FieldInfo,
        flag: Flag,
        panel: str | None,
        unset: bool = False,
    ) -> None:
        self.name, self.paths, self.info, self.flag, self.panel = name, [path], info, flag, panel
        self.annotation, self.default, self.metavar, self.kind = _cli_form(info, flag)
        self.unset = unset
        """An option of an optional nested setting: absent, it leaves that setting unset."""
        if unset:
            self.annotation, self.default = Optional[self.annotation], None
        dashed = "--" + name.replace("_", "-")
        if self.annotation is bool and flag.switch is _UNSET:
            dashed += f"/--no-{name.replace('_', '-')}"
        long = tuple(n for n in flag.names if n.startswith("--"))
        short = tuple(n for n in flag.names if not n.startswith("--"))
        self.decls = (*(long or (dashed,)), *short)
        self.long = self.decls[0].split("/")[0]

    def parameter(self, refs: dict[str, str]) -> inspect.Parameter:
        option = typer.Option(
            self.default, *self.decls, help=self._help(refs), metavar=self.metavar, rich_help_panel=self.panel
        )
        return inspect.Parameter(
            self.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=self.annotation
        )

    def _help(self, refs: dict[str, str]) -> str:
        """The field's docstring, with ``field`` references spelled as this command's flags."""
        text = " ".join((self.info.description or "").split())
        text = re.sub(r"``([\w.]+)``", lambda m: refs.get(m[1].rsplit(".", 1)[-1], m[1]), text)
        parts = [text.replace("``", ""), self.flag.note, _NOTES.get(self.kind, "")]
        if self.flag.switch is not _UNSET:
            parts.append(f"Given: {self.flag.switch!r}; absent: {self.info.default!r}.")
        elif self.flag.convert is None:
            parts.append(_bounds(self.info, integer=int in (self.annotation, *get_args(self.annotation))))
        return escape(" ".join(p for p in parts if p))

    def value(self, raw: Any) -> Any:
        """The field's value from the CLI's, or _UNSET to leave the field to its default."""
        if self.flag.repeat or (self.unset and raw is None):
            return _UNSET
        if self.flag.switch is not _UNSET:
            return self.flag.switch if raw else _UNSET
        if self.kind == "dict":
            return parse_key_values(raw, self.long)
        if self.kind == "commas":
            return _UNSET if raw is None else tuple(part.strip() for part in raw.split(",") if part.strip())
        if self.kind == "none" and raw == "none":
            return None
        return self.flag.convert(raw) if self.flag.convert else raw


def _cli_form(info: FieldInfo, flag: Flag) -> tuple[Any, Any, str | None, str]:
    """(typer annotation, CLI default, metavar, kind of conversion) for a field."""
    default = ... if info.is_required() else info.get_default(call_default_factory=True)
    inner = info.annotation
    if get_origin(inner) in (Union, types.UnionType) and type(None) in get_args(inner):
        inner = next(arg for arg in get_args(inner) if arg is not type(None))
    origin = get_origin(inner)
    if flag.switch is not _UNSET:
        return bool, False, None, ""
    if flag.repeat:  # a list field repeated per generator: each value is one string (comma-separated)
        element = str if origin is list else inner
        return (
            list[element],
            default if default is ... else [] if default is None else [default],
            None,
            "list",
        )
    if origin is Literal:
        return str, default, "<" + "|".join(str(choice) for choice in get_args(inner)) + ">", ""
    if inner is dict or origin is dict:
        return list[str], [], "<KEY=VALUE>", "dict"
    if origin is list:
        return inner, default, None, "list"
    if origin is tuple:
        return (
            (str if default else Optional[str]),
            ",".join(map(str, default)) if default else None,
            None,
            "commas",
        )
    if inner is str and info.annotation is not str and default is not None:
        return str, default, None, "none"
    return (inner if default is not None else Optional[inner]), default, None, ""


def _bounds(info: FieldInfo, integer: bool) -> str:
    """Pydantic's constraints in click's notation, e.g. '[x>=1]' or '[0<x<1]'."""
    low = high = None
    for constraint in info.metadata:
        for attr, sign in _BOUNDS:
            if getattr(constraint, attr, None) is not None:
                bound = (sign, getattr(constraint, attr))
                if integer and len(sign) == 1:  # x>0 reads x>=1 for a count
                    bound = (sign + "=", bound[1] + (1 if sign == ">" else -1))
                low, high = (bound, high) if attr[0] == "g" else (low, bound)
    if low and high:
        return f"[{low[1]}{low[0].replace('>', '<')}x{high[0]}{high[1]}]"
    return f"[x{low[0]}{low[1]}]" if low else f"[x{high[0]}{high[1]}]" if high else ""


def _nested(info: FieldInfo) -> type[BaseModel] | None:
    annotation = info.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _optional_nested(info: FieldInfo) -> type[BaseModel] | None:
    args = [arg for arg in get_args(info.annotation) if arg is not type(None)]
    return (
        args[0] if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel) else None
    )


def _fields(
    config: type[BaseModel], flatten: tuple[str, ...], prefixed: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], FieldInfo, str | None, str]]:
    """Leaf fields in declaration order, with their option names; a flattened nested settings' fields
    get a help panel; an optional nested one's (``prefixed``) are named '<field>_<leaf>'."""
    found = []
    for name, info in config.model_fields.items():
        nested = _nested(info)
        if name in prefixed and _optional_nested(info) is not None:
            found += [
                ((name, leaf), sub, f"{name} settings", f"{name}_{leaf}")
                for leaf, sub in _optional_nested(info).model_fields.items()
                if _nested(sub) is None
            ]
        elif nested is None:
            found.append(((name,), info, None, name))
        elif name in flatten:
            found += [
                ((name, leaf), sub, f"{name} settings", leaf) for leaf, sub in nested.model_fields.items()
            ]
    return found


class ConfigOptions:
    """A command's options from its config class: ``flatten`` lists nested settings whose fields
    become options without a prefix, ``prefixed`` optional nested settings whose fields become
    '--<field>-<leaf>' options (any of them given sets that setting), ``exclude`` options not offered,
    ``shared`` names that several flattened fields have and one option sets, ``flags`` per-option
    ``Flag``s."""

    def __init__(
        self,
        config: type[BaseModel],
        *,
        flatten: tuple[str, ...] = (),
        prefixed: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        shared: tuple[str, ...] = (),
        flags: dict[str, Flag] | None = None,
    ) -> None:
        self.config, flags = config, flags or {}
        self.options: dict[str, _Option] = {}
        seen: set[str] = set()
        for path, info, panel, name in _fields(config, flatten, prefixed):
            seen.add(name)
            if name in exclude:
                continue
            if name in self.options:
                if name not in shared:
                    where = ".".join(self.options[name].paths[0])
                    raise ValueError(
                        f"{config.__name__}: option {name!r} would set both {where} and "
                        f"{'.'.join(path)}; list it in shared= or exclude="
                    )
                self.options[name].paths.append(path)
                continue
            self.options[name] = _Option(
                name, path, info, flags.get(name, Flag()), panel, unset=name != path[-1]
            )
        unknown = ", ".join(sorted((set(flags) | set(exclude) | set(shared)) - seen))
        if unknown:
            raise ValueError(f"{config.__name__}: no field {unknown} to shape an option from")

    def __call__(self, command: Callable[..., Any]) -> Callable[..., Any]:
        """Give ``command`` (own parameters and ``**settings``) the options as its signature, which
        typer reads: its own required ones, the config's, then its other ones (--quiet...)."""
        own = [
            param.replace(kind=param.KEYWORD_ONLY)
            for param in inspect.signature(command, eval_str=True).parameters.values()
            if param.kind is not param.VAR_KEYWORD
        ]
        required = [param for param in own if getattr(param.default, "default", None) is ...]
        refs = {name: option.long for name, option in self.options.items()}
        params = [*required, *[option.parameter(refs) for option in self.options.values()]]
        params += [param for param in own if param not in required]
        _check_clashes(command.__name__, params)
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return command

    def build(self, values: dict[str, Any], **overrides: Any) -> Any:
        """The config from a command's ``**settings``; ``overrides`` set fields (a nested one's as
        a dict of its fields) that the command derives itself."""
        data: dict[str, Any] = {}
        for name, option in self.options.items():
            value = option.value(values[name])
            for path in option.paths if value is not _UNSET else ():
                target = data.setdefault(path[0], {}) if len(path) > 1 else data
                target[path[-1]] = value
        for key, value in overrides.items():
            nested = _nested(self.config.model_fields[key]) and key in data
            data[key] = {**data[key], **value} if nested else value
        try:
            return self.config(**data)
        except ValidationError as exc:
            loc = tuple(str(part) for part in exc.errors()[0]["loc"])
            for option in self.options.values():
                if any(loc[: len(path)] == path for path in option.paths):
                    raise HardnegError(one_line(exc, option.long)) from None
            raise


def _check_clashes(command: str, params: list[inspect.Parameter]) -> None:
    """Two parameters with one name or flag would shadow each other silently: refuse at import."""
    owners: dict[str, str] = {}
    for param in params:
        decls = getattr(param.default, "param_decls", None) or ()
        for spelling in (param.name, *[part for decl in decls for part in decl.split("/")]):
            if owners.setdefault(spelling, param.name) != param.name:
                raise ValueError(
                    f"{command}: {spelling!r} is declared by both {owners[spelling]!r} and {param.name!r}"
                )
