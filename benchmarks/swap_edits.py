"""What swaps change: for a triplets file of swap-mode negatives, the share that change one distinct
word of the positive, and the share that touch a content word (or stem) of the query.

    .venv/bin/python benchmarks/swap_edits.py RUN/stages/negatives/scifact-llm-swap-*.jsonl
"""

from __future__ import annotations

import difflib
import sys

from hardneg.data.records import read_triplets
from hardneg.generation.parse import query_phrases


def edits(path: str) -> dict[str, float]:
    total = one_word = on_query = 0
    for triplet in read_triplets(path):
        positive = triplet.positive.split()
        for negative in triplet.negatives:
            matcher = difflib.SequenceMatcher(a=positive, b=negative.text.split(), autojunk=False)
            changed = [w for op, i, j, _, _ in matcher.get_opcodes() if op != "equal" for w in positive[i:j]]
            total += 1
            one_word += len(set(changed)) <= 1
            on_query += bool(query_phrases([" ".join(changed)], triplet.query)) if changed else 0
    return {"swaps": total, "one_word": one_word / total, "touch_query": on_query / total}


if __name__ == "__main__":
    for path in sys.argv[1:]:
        found = edits(path)
        print(
            f"{path}: {found['swaps']} swaps; {found['one_word']:.0%} change one distinct word; "
            f"{found['touch_query']:.0%} touch a query word"
        )
