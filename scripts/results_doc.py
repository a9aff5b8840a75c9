"""Fill a document's ``<!-- results:NAME:start -->`` blocks from a study's results.json (see
``hardneg.reporting.docs``), so docs/results.md shows the run's own figures.

    .venv/bin/python scripts/results_doc.py docs/results/study.json docs/results.md
    .venv/bin/python scripts/results_doc.py docs/results/study.json docs/results.md --check \\
        --also docs/results/study-1.json

``--check`` then lists each four-decimal figure of the prose that neither these results nor those
named by ``--also`` hold (nor a gap between two of their rows), and exits 1 if there is one: what a
refill left stale in the text around the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hardneg.core.errors import HardnegError
from hardneg.reporting.docs import fill, stale_figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("doc", type=Path)
    parser.add_argument("--check", action="store_true", help="list the prose's figures no results hold")
    parser.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        help="results the prose quotes too (implies --check)",
    )
    args = parser.parse_args()
    try:
        loaded = [json.loads(path.read_text(encoding="utf-8")) for path in [args.results, *args.also]]
        filled = fill(loaded[0], args.doc)
        stale = stale_figures(args.doc, loaded) if args.check or args.also else []
    except (HardnegError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.doc}: filled {', '.join(filled) or 'no block'} from {args.results}")
    for line in stale:
        print(f"{line} is in none of these results (prose from another run?)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
