"""`hardneg audit`: how hard each source's negatives are (flags from AuditSettings)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from hardneg.cli.common import app, console, user_errors
from hardneg.cli.options import ConfigOptions
from hardneg.settings.audit import AuditSettings

AUDIT = ConfigOptions(AuditSettings)


@app.command()
@AUDIT
def audit(
    triplets: list[Path] = typer.Argument(
        ..., help="Triplet files; negatives are grouped by their `source`."
    ),
    output_dir: Path = typer.Option(
        Path("audit"), "--output-dir", "-o", help="Writes audit.md, audit.json, audit.png."
    ),
    **options: Any,
) -> None:
    """How hard each source's negatives are: likely false negatives, hard, too easy; length, overlap, \
near-copies."""
    from hardneg.core.io import atomic_open, write_json
    from hardneg.reporting.audit import (
        AUDIT_COLUMNS,
        audit_file,
        audit_markdown,
        audit_rows,
        plot_margins,
    )

    with user_errors():
        settings = AUDIT.build(options)
        result = audit_file(list(triplets), settings)
        write_json(output_dir / "audit.json", result.model_dump(mode="json"))
        groups = {source: audit.margins for source, audit in result.sources.items()}
        plot = plot_margins(
            groups, settings.easy_margin, output_dir / "audit.png", "negative margins by source"
        )
        with atomic_open(output_dir / "audit.md") as handle:
            handle.write(audit_markdown(result) + f"\n![margins]({plot.name})\n")
    from hardneg.cli.common import print_table

    table = Table("source", *AUDIT_COLUMNS, title=f"audit ({result.scorer})")
    for source, row in zip(result.sources, audit_rows(result)):
        table.add_row(source, *row)
    print_table(console, table)
    console.print(f"wrote {output_dir / 'audit.md'}, audit.json, audit.png", markup=False, highlight=False)
