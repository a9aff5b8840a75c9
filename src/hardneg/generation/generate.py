"""`generate`: ask an LLM for hard negatives of each (query, positive) pair; no corpus needed.

Each pair gets up to ``max_attempts`` rounds of requests: the first asks for all negatives (at
most ``negatives_per_request`` at a time), each later one for those still missing after parsing
and rejects. Every answer is stored before it is used,
so a rerun after a crash replays stored answers and sends only the requests never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from hardneg.core.errors import HardnegError
from hardneg.core.io import beside
from hardneg.core.manifest import Stopwatch
from hardneg.data.records import Negative, Pair, Triplet, read_pairs, write_records
from hardneg.generation.client import EndpointPool, request_body
from hardneg.generation.local import embedded_server, is_embedded
from hardneg.generation.parse import (
    RejectRules,
    apply_swap,
    asks_about,
    parse_answer,
    parse_swaps,
    query_phrases,
)
from hardneg.generation.prompts import BUILT_IN, PromptTemplate, load_template
from hardneg.generation.store import ResponseStore, request_key
from hardneg.settings.llm import GenerateSettings, LLMSettings, parse_budget

DEFAULT_TEMPLATE = "query+positive"


def generator_label(model: str, template: str = DEFAULT_TEMPLATE) -> str:
    """The name in ``source = "llm:<label>"``: an alias, a GGUF file's stem, or the served model name,
    plus ``/<template>`` for any prompt but the default, so two prompts' negatives stay two sources."""
    label = Path(model).stem if model.lower().endswith(".gguf") else model
    if template != DEFAULT_TEMPLATE:
        label += "/" + (template if template in BUILT_IN else Path(template).stem)
    return label


def store_path_for(output: str | Path) -> Path:
    return beside(output, ".responses.jsonl")


@dataclass
class GenerationResult:
    triplets: list[Triplet]
    counts: dict[str, Any]
    timings: dict[str, float]


class BudgetReached(Exception):
    """Raised inside a pair when the run has spent its budget: that pair stops, others finish."""


@dataclass
class Budget:
    """What this invocation may spend on new requests (stored answers are free)."""

    config: GenerateSettings
    spent_tokens: int = 0
    spent_usd: float = 0.0
    limit: tuple[float, str] | None = None

    def __post_init__(self) -> None:
        if self.config.max_budget is not None:
            self.limit = parse_budget(self.config.max_budget)

    def spend(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.spent_tokens += prompt_tokens + completion_tokens
        price_in, price_out = self.config.prompt_price or 0.0, self.config.completion_price or 0.0
        self.spent_usd += (prompt_tokens * price_in + completion_tokens * price_out) / 1e6

    @property
    def exhausted(self) -> bool:
        if self.limit is None:
            return False
        amount, unit = self.limit
        return (self.spent_usd if unit == "usd" else self.spent_tokens) >= amount

    def describe(self) -> str:
        return f"{self.spent_tokens:,} tokens" + (
            f" (${self.spent_usd:,.2f})" if self.config.prompt_price is not None else ""
        )


@dataclass
class _Run:
    """What one generator run shares across its concurrent pairs."""

    config: GenerateSettings
    template: PromptTemplate
    client: EndpointPool
    store: ResponseStore
    counts: Counter = field(default_factory=Counter)
    rejects: Counter = field(default_factory=Counter)
    budget: Budget | None = None

    async def answer(self, pair: Pair, sample: int, count: int) -> str:
        """The answer text; a completion's comes with the prompt's last line ('Passage 1:') before it,
        so its first passage parses like the others."""
        positive = self.config.shown_positive(pair.positive)
        if self.config.api == "completions":
            prompt = self.template.prompt(pair.query, positive, count)
            return prompt.rsplit("\n", 1)[-1] + await self._ask(
                pair, sample, request_body(self.config, prompt, count, sample)
            )
        messages = self.template.render(pair.query, positive, count, self.config.disable_thinking)
        request = request_body(self.config, messages, count, sample, positive=positive, query=pair.query)
        return await self._ask(pair, sample, request)

    async def _ask(self, pair: Pair, sample: int, request: dict[str, Any]) -> str:
        # The intended request (before any field a server refused) and the sample number: a rerun
        # asks the same and finds the answer, whichever server it now talks to.
        key = request_key(request=request, sample=sample)
        stored = self.store.get(key)
        if stored is not None:
            self.counts["requests_reused"] += 1
            return stored["answer"]
        if self.budget.exhausted:
            raise BudgetReached
        completion = await self.client.complete(request)
        if not completion.prompt_tokens and not completion.completion_tokens:  # a server without `usage`
            self.counts["usage_estimated"] += 1  # ~4 characters a token, so a budget still binds
            prompt_chars = (
                len(request["prompt"])
                if "prompt" in request
                else sum(len(m["content"]) for m in request["messages"])
            )
            completion = dataclasses.replace(
                completion, prompt_tokens=prompt_chars // 4, completion_tokens=len(completion.text) // 4
            )
        self.budget.spend(completion.prompt_tokens, completion.completion_tokens)
        self.store.put(
            key,
            {
                "query_id": pair.query_id,
                "positive_id": pair.positive_id,
                "sample": sample,
                "answer": completion.text,
                "completion_tokens": completion.completion_tokens,
                "finish_reason": completion.finish_reason,
            },
        )
        self.counts["requests_sent"] += 1
        self.counts["prompt_tokens"] += completion.prompt_tokens
        self.counts["completion_tokens"] += completion.completion_tokens
        return completion.text

    def texts(self, pair: Pair, answer: str) -> tuple[list[str], str]:
        """Candidate negatives from an answer: its passages, or in swap mode the positive with each
        substitution applied (those that do not apply are counted as rejects)."""
        if self.config.mode != "swap":
            return parse_answer(answer)
        swaps, shape = parse_swaps(answer)
        texts = []
        # held to the query's phrases when the positive shown has any (else every phrase was offered)
        held = self.config.swap_from == "query" and asks_about(
            self.config.shown_positive(pair.positive), pair.query
        )
        for old, new in swaps:
            edited, reason = apply_swap(pair.positive, old, new)
            if reason is None and held and not query_phrases([old], pair.query):
                edited, reason = None, "swap_off_query"
            if reason is not None:
                self.rejects[reason] += 1
            else:
                texts.append(edited)
        return texts, shape

    async def negatives(self, pair: Pair) -> list[str]:
        wanted = self.config.num_negatives
        per_request = min(self.config.negatives_per_request or wanted, wanted)
        budget = self.config.max_attempts * -(-wanted // per_request)  # rounds x requests a round
        rules = RejectRules(pair.query, pair.positive, self.config.rejects, self.config.copy_overlap_limit)
        accepted: list[str] = []
        for sample in range(budget):
            missing = wanted - len(accepted)
            if missing == 0:
                break
            texts, shape = self.texts(pair, await self.answer(pair, sample, min(missing, per_request)))
            self.counts[f"answers_{shape}"] += 1
            for text in texts:
                reason = rules.accept(text)
                if reason is not None:
                    self.rejects[reason] += 1
                elif len(accepted) < wanted:
                    accepted.append(text)
                else:
                    self.counts["surplus"] += 1
        return accepted


async def generate_async(
    pairs: list[Pair],
    config: GenerateSettings,
    base_urls: list[str],
    store: ResponseStore,
    show_progress: bool = True,
) -> GenerationResult:
    """Generate for every pair against running servers at ``base_urls`` (one model, one or many endpoints)."""
    clock = Stopwatch()
    template = load_template(config.template)  # before the client opens connections
    client = EndpointPool.open(base_urls, config)
    run = _Run(config, template, client, store, budget=Budget(config))
    results: list[list[str]] = [[] for _ in pairs]
    unfinished: list[int] = []
    pending = iter(range(len(pairs)))  # shared by the workers: each takes the next pair when free
    bar = tqdm(
        total=len(pairs),
        desc=f"generate {generator_label(config.model)}",
        unit="pair",
        disable=not show_progress,
    )

    async def worker() -> None:
        for index in pending:
            try:
                results[index] = await run.negatives(pairs[index])
            except BudgetReached:  # stop asking; requests in flight elsewhere still land in the store
                unfinished.append(index)
                unfinished.extend(pending)
                return
            progress(bar, client)

    started = time.perf_counter()
    try:
        await run_workers(worker, config.concurrency, store)
    finally:
        bar.close()
        await client.aclose()
    if unfinished:
        raise HardnegError(
            f"{generator_label(config.model)}: budget {config.max_budget} reached "
            f"({run.budget.describe()} sent); "
            f"{len(pairs) - len(unfinished)} of {len(pairs)} pairs done, "
            "every answer is stored: rerun to continue"
        )
    elapsed = time.perf_counter() - started
    clock.lap("generate")

    source = f"llm:{generator_label(config.model, config.template)}"
    triplets = [
        Triplet(**pair.model_dump(), negatives=[Negative(text=text, source=source) for text in texts])
        for pair, texts in zip(pairs, results)
    ]
    delivered = sum(len(texts) for texts in results)
    counts: dict[str, Any] = {
        "source": source,
        "pairs": len(pairs),
        "requested": len(pairs) * config.num_negatives,
        "delivered": delivered,
        "shortfalls": sum(len(texts) < config.num_negatives for texts in results),
        **run.counts,
        "rejects": dict(sorted(run.rejects.items())),
        "faults": dict(sorted(client.stats.items())),
        "refused_fields": sorted(client.refused),
        "endpoints": client.per_endpoint(),
        "completion_tokens_per_s": round(run.counts["completion_tokens"] / elapsed, 2) if elapsed else None,
        "negatives_per_s": round(delivered / elapsed, 3) if elapsed else None,
    }
    return GenerationResult(triplets, counts, clock.laps)


def progress(bar: tqdm, client: EndpointPool) -> None:
    """One more done; the postfix shows the requests in flight against the client's limit, which
    drops below ``concurrency`` while a server is overloaded."""
    if not bar.disable:
        bar.set_postfix_str(client.load(), refresh=False)
    bar.update()


async def run_workers(worker, concurrency: int, store: ResponseStore) -> None:
    """``concurrency`` copies of ``worker`` while the store group-commits; the first user error ends all."""
    try:
        async with store.syncing(), asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
    except* HardnegError as errors:
        raise errors.exceptions[0] from None


def serve(config: LLMSettings, stack: contextlib.ExitStack) -> list[str]:
    """The endpoints to send to: ``base_url``, or the embedded server started for ``config.model``
    (stopped when ``stack`` closes)."""
    if not config.embedded:
        return config.base_url
    if not is_embedded(config.model):
        raise HardnegError(
            f"model {config.model!r} needs --base-url (an OpenAI-compatible server); offline, "
            "use --model smollm2-135m, gemma3-270m or a .gguf file"
        )
    return [stack.enter_context(embedded_server(config))]


def generate(
    pairs: list[Pair], config: GenerateSettings, store_path: str | Path, show_progress: bool = True
) -> GenerationResult:
    """Generate with the configured back end: the embedded server when ``base_url`` is unset."""
    load_template(config.template)  # a bad template fails before a model loads
    clock = Stopwatch()
    with contextlib.ExitStack() as stack:
        base_urls = serve(config, stack)
        if config.embedded:
            clock.lap("server_start")
        store = stack.enter_context(ResponseStore(store_path))
        result = asyncio.run(generate_async(pairs, config, base_urls, store, show_progress))
    result.timings = {**clock.laps, **result.timings}
    return result


def generate_file(
    pairs_path: str | Path,
    config: GenerateSettings,
    output: str | Path,
    show_progress: bool = True,
    store: str | Path | None = None,
) -> GenerationResult:
    """Read pairs, generate, write the triplets (the ``generate`` stage adds the manifest); answers
    are kept beside the output (or in ``store``: answers are keyed by the exact request, so runs with
    other settings can share one)."""
    pairs = read_pairs(pairs_path)
    store = Path(store) if store is not None else store_path_for(output)
    result = generate(pairs, config, store, show_progress)
    write_records(output, result.triplets)
    return result
