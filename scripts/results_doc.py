"""Fill a document's ``<!-- results:NAME:start -->`` blocks from a study's results.json (see
``hardneg.reporting.docs``), so docs/results.md shows the run's own figures.

    .venv/bin/python scripts/results_doc.py docs/results/study.json docs/results.md
"""

from __future__ import annotations

import json
import sys

from hardneg.core.errors import HardnegError
from hardneg.reporting.docs import fill

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results_path, doc = sys.argv[1:]
    try:
        filled = fill(json.loads(open(results_path, encoding="utf-8").read()), doc)
    except (HardnegError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"{doc}: filled {', '.join(filled) or 'no block'} from {results_path}")
