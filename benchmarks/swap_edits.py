"""What swaps change: for a triplets file of swap-mode negatives, the share that change one distinct
word of the positive, and the share that touch a content word (or stem) of the query. With the
generator's answer store, also the share of the stored swaps whose `from` occurs inside a longer
token of the positive ('12' in '2012', '5' in '2.5', '6' in 'IL-6'): what swap rules 1 edited too,
and rules 3 no longer do.

    .venv/bin/python benchmarks/swap_edits.py RUN/stages/negatives/scifact-llm-swap-*.jsonl
    .venv/bin/python benchmarks/swap_edits.py TRIPLETS.jsonl \
        --answers RUN/stages/negatives/scifact-llm-swap.responses.jsonl
"""

from __future__ import annotations

import argparse
import difflib
import json
import re

from hardneg.data.records import read_triplets
from hardneg.generation.parse import TOKEN_END, TOKEN_START, parse_swaps, query_phrases


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


def inside_words(path: str, answers: str) -> tuple[int, int]:
    """(stored swaps whose `from` is in the positive, those of them also inside a longer token)."""
    positives = {t.positive_id: t.positive for t in read_triplets(path)}
    found = inside = 0
    for line in open(answers, encoding="utf-8"):
        record = json.loads(line)
        positive = positives.get(record["positive_id"])
        if positive is None:
            continue
        for old, _ in parse_swaps(record["answer"])[0]:
            if not old.strip() or old not in positive:
                continue
            found += 1
            whole = len(re.findall(TOKEN_START + re.escape(old) + TOKEN_END, positive))
            inside += positive.count(old) > whole
    return found, inside


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("triplets", nargs="+")
    parser.add_argument("--answers", help="the generator's answer store (with one triplets file)")
    args = parser.parse_args()
    for path in args.triplets:
        found = edits(path)
        print(
            f"{path}: {found['swaps']} swaps; {found['one_word']:.0%} change one distinct word; "
            f"{found['touch_query']:.0%} touch a query word"
        )
        if args.answers:
            swaps, inside = inside_words(path, args.answers)
            print(
                f"{args.answers}: {swaps} stored swaps found in their positive; "
                f"{inside} ({inside / max(swaps, 1):.1%}) also occur inside a longer token"
            )
