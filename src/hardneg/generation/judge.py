"""The LLM judge: ask a model, per negative, whether it answers the query.

A negative the judge says answers the query is a likely false negative: it is dropped, or relabelled
as the positive of an extra training pair (RLHN's idea). Every answer is stored before it is used,
keyed by the exact request, so a rerun replays them and asks only what was never answered. Each
verdict is also written beside the output (``<output>.judged.jsonl``), which the audit reads to say
how far the judge agrees with its scorer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hardneg.core.io import atomic_open, beside
from hardneg.data.records import Triplet
from hardneg.generation.client import EndpointPool, sampling_body
from hardneg.generation.generate import progress, run_workers, serve
from hardneg.generation.parse import strip_thinking
from hardneg.generation.prompts import JUDGE_BUILT_IN, JUDGE_PLACEHOLDERS, PromptTemplate, load_template
from hardneg.generation.store import ResponseStore, request_key
from hardneg.settings.llm import JudgeSettings

VERDICT_SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "schema": {
            "type": "object",
            "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
            "required": ["answer"],
        },
    },
}
FIRST_WORD = re.compile(r"[a-z]+")
JSON_ANSWER = re.compile(r'"answer"\s*:\s*"?\s*(yes|no)\b')
"""The verdict in a JSON answer, also one cut off after it (a grammar lets small models pad with
whitespace until the token limit)."""


def judged_path(output: str | Path) -> Path:
    return beside(output, ".judged.jsonl")


def verdict_of(answer: str) -> str:
    """'yes', 'no', or 'unclear': from {"answer": ...}, else the answer's first word."""
    text = strip_thinking(answer).lower()
    found = JSON_ANSWER.search(text)
    if found:
        return found.group(1)
    word = FIRST_WORD.search(text)
    return word.group(0) if word and word.group(0) in ("yes", "no") else "unclear"


def judge_request(
    settings: JudgeSettings, template: PromptTemplate, query: str, passage: str
) -> dict[str, Any]:
    text = template.fill(query=query, passage=passage)
    if settings.api == "completions":
        return sampling_body(settings, text)
    body = sampling_body(settings, [{"role": "user", "content": text}])
    if settings.structured_output:
        body["response_format"] = VERDICT_SCHEMA
    return body


async def _ask_all(
    items: list[tuple[str, str]],
    settings: JudgeSettings,
    urls: list[str],
    store: ResponseStore,
    counts: Counter,
    show_progress: bool,
) -> list[str]:
    template = load_template(settings.template, JUDGE_BUILT_IN, JUDGE_PLACEHOLDERS)
    client = EndpointPool.open(urls, settings)
    verdicts = ["unclear"] * len(items)
    pending = iter(range(len(items)))
    bar = tqdm(total=len(items), desc=f"judge {settings.model}", unit="negative", disable=not show_progress)

    async def worker() -> None:
        for index in pending:
            request = judge_request(settings, template, *items[index])
            key = request_key(request=request)
            stored = store.get(key)
            if stored is not None:
                counts["judge_requests_reused"] += 1
                answer = stored["answer"]
            else:
                answer = (await client.complete(request)).text
                store.put(key, {"answer": answer})
                counts["judge_requests_sent"] += 1
            verdicts[index] = verdict_of(answer)
            progress(bar, client)

    try:
        await run_workers(worker, settings.concurrency, store)
    finally:
        bar.close()
        await client.aclose()
    return verdicts


def judge_triplets(
    triplets: list[Triplet],
    settings: JudgeSettings,
    store_path: str | Path,
    output: str | Path,
    counts: Counter,
    show_progress: bool = True,
) -> list[Triplet]:
    """Judge every negative; drop or relabel the 'yes' ones; write each verdict beside ``output``."""
    load_template(
        settings.template, JUDGE_BUILT_IN, JUDGE_PLACEHOLDERS
    )  # a bad template fails before a model loads
    items = [(t.query, n.text) for t in triplets for n in t.negatives]
    with contextlib.ExitStack() as stack:
        urls = serve(settings, stack)
        store = stack.enter_context(ResponseStore(store_path))
        verdicts = asyncio.run(_ask_all(items, settings, urls, store, counts, show_progress))
    counts.update(f"judge_{v}" for v in verdicts)
    verdict_of_item = iter(verdicts)
    kept_triplets: list[Triplet] = []
    with atomic_open(judged_path(output)) as handle:
        for triplet in triplets:
            judged = [(negative, next(verdict_of_item)) for negative in triplet.negatives]
            for negative, verdict in judged:
                handle.write(
                    json.dumps(
                        {
                            "query_id": triplet.query_id,
                            "positive_id": triplet.positive_id,
                            "query": triplet.query,
                            "positive": triplet.positive,
                            "source": negative.source,
                            "text": negative.text,
                            "verdict": verdict,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            kept = [negative for negative, verdict in judged if verdict != "yes"]
            kept_triplets.append(triplet.model_copy(update={"negatives": kept}))
            for negative, verdict in judged if settings.action == "relabel" else ():
                if verdict != "yes":
                    continue
                # an extra pair: the judged passage as its positive (with its own score from the
                # triplet's scorer, so margin-MSE reads margins to it), the others as negatives
                digest = hashlib.blake2b(negative.text.encode(), digest_size=6).hexdigest()
                update = {
                    "positive_id": negative.doc_id or f"relabelled:{digest}",
                    "positive": negative.text,
                    "negatives": kept,
                    "positive_score": negative.score if triplet.positive_score is not None else None,
                }
                kept_triplets.append(triplet.model_copy(update=update))
    counts["judge_" + ("relabelled" if settings.action == "relabel" else "dropped")] = counts["judge_yes"]
    return kept_triplets
