"""What every command shares: the app, consoles, one-line user errors, options that are not settings."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from hardneg.core.errors import HardnegError, storage_error
from hardneg.core.io import slug as io_slug
from hardneg.core.output import PipeConsole, print_table
from hardneg.settings.data import PairsSettings

app = typer.Typer(
    help="Build hard-negative training data for dense retrievers, and measure what it is worth.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate BEIR datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console: Console = PipeConsole()  # piped or in a CI log: Markdown tables, lines not wrapped at 80 columns
errors = Console(stderr=True)

DataRootOption = typer.Option(None, "--data-root", help=PairsSettings.model_fields["data_root"].description)
QuietOption = typer.Option(False, "--quiet", "-q", help="No progress bars.")


THIRD_PARTY_LOGGERS = ("sentence_transformers", "transformers", "datasets", "accelerate", "bm25s")


def quiet_third_party(verbose: bool) -> None:
    """Libraries' own chatter (transformers' load reports, weight-loading and shard-writing bars,
    sentence-transformers' notices) is hidden unless ``-v``: each stage keeps its own bar and lines.
    Environment variables reach the libraries before they load, and Ray workers started from here."""
    import logging

    if verbose:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def fail(message: str) -> None:
    errors.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one line on stderr and exit status 2."""
    try:
        yield
    except HardnegError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(one_line(exc))
    except OSError as exc:
        storage = storage_error(exc)
        if storage is None:
            raise
        fail(str(storage))


def one_line(exc: ValidationError, where: str = "") -> str:
    """The first problem as 'where: message'; a whole config's (a model validator's) has no where."""
    first = exc.errors()[0]
    where = where or ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def print_counts(counts: dict[str, Any], title: str) -> None:
    table = Table("count", "value", title=title)
    for name, value in counts.items():
        if value not in (None, {}, []):
            table.add_row(name, str(value))
    print_table(console, table)


def slug(name: str) -> str:
    """A model or dataset named by a path is labelled by its last part."""
    return io_slug(Path(name).name or name)


def parse_key_values(items: list[str], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` options; a value is JSON when it parses (numbers, booleans), else a string."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise HardnegError(f"{option} {item!r}: expected KEY=VALUE")
        try:
            parsed[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            parsed[key.strip()] = value
    return parsed
