"""How the CLI prints so that a pipe or a CI log stays readable: a terminal gets rich tables as before;
anything else (``| cat``, a file, a CI log, typer's CliRunner) gets tables as GitHub-style Markdown and
lines that are never wrapped at 80 columns, so a long model name stays whole on one line.

Only rich here (no typer): both the CLI and the experiment runner print through it."""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


class PipeConsole(Console):
    """A Console that soft-wraps (no inserted line breaks, no cropping) whenever it is not writing to a
    terminal; decided at each print, since the stream can change (tests swap sys.stdout)."""

    @property  # type: ignore[override]
    def soft_wrap(self) -> bool:
        return self._soft_wrap or not self.is_terminal

    @soft_wrap.setter
    def soft_wrap(self, value: bool) -> None:
        self._soft_wrap = value


def print_table(console: Console, table: Table) -> None:
    """The rich table in a terminal; a Markdown table (title line, table, blank line) otherwise."""
    if console.is_terminal:
        console.print(table)
    else:
        console.print(markdown_table(table), markup=False, highlight=False, soft_wrap=True)


def markdown_table(table: Table) -> str:
    """A rich Table as a GitHub-style Markdown table, columns padded to line up; a title or caption
    becomes a line of its own before or after it. Printed, it ends with a blank line, so that a line
    printed next is not read as one more row."""
    headers = [_plain(column.header) for column in table.columns]
    columns = [[_plain(cell) for cell in column.cells] for column in table.columns]
    rows = [list(row) for row in zip(*columns)] if columns else []
    justify = [column.justify for column in table.columns]
    widths = [max([3, cell_len(h)] + [cell_len(row[i]) for row in rows]) for i, h in enumerate(headers)]

    def pad(cell: str, width: int, how: str) -> str:
        room = width - cell_len(cell)
        if how == "right":
            return " " * room + cell
        if how == "center":
            return " " * (room // 2) + cell + " " * (room - room // 2)
        return cell + " " * room

    def line(cells: list[str]) -> str:
        padded = (pad(cell, width, how) for cell, width, how in zip(cells, widths, justify))
        return "| " + " | ".join(padded) + " |"

    rules = []
    for how, width in zip(justify, widths):  # a rule spans the cell and its two spaces
        if how == "right":
            rules.append("-" * (width + 1) + ":")
        elif how == "center":
            rules.append(":" + "-" * width + ":")
        else:
            rules.append("-" * (width + 2))
    lines = [line(headers), "|" + "|".join(rules) + "|"]
    lines += [line(row) for row in rows]
    if table.title:
        lines = [_plain(table.title), ""] + lines
    if table.caption:
        lines += ["", _plain(table.caption)]
    return "\n".join(lines) + "\n"


def _plain(cell: RenderableType | None) -> str:
    """A cell's text on one line, with Markdown's column separator escaped. Strings are taken as
    they are (the repository's data is not markup)."""
    if cell is None:
        text = ""
    elif isinstance(cell, str):
        text = cell
    elif isinstance(cell, Text):
        text = cell.plain
    else:  # any other renderable: its plain rendering
        capture = Console(file=io.StringIO(), width=10_000, color_system=None, soft_wrap=True)
        capture.print(cell)
        text = capture.file.getvalue()  # type: ignore[attr-defined]
    return " ".join(part.strip() for part in text.splitlines() if part.strip()).replace("|", "\\|")
