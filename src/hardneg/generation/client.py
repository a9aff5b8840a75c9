"""One client for every back end: OpenAI-compatible chat completions over httpx, async, with
retries on the faults a busy or flaky server produces.

The embedded llama.cpp server, vLLM, Ollama and hosted APIs all take the same requests. Three
fields are extensions not every server knows (``top_k``, a JSON-schema ``response_format``,
``chat_template_kwargs``): a server that refuses one (400 naming it) gets the request again
without it, and the run goes on without it.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx

from hardneg.core.errors import HardnegError
from hardneg.generation.limits import AdaptiveLimit, Endpoint, Waiters
from hardneg.generation.parse import swap_candidates
from hardneg.settings.llm import GenerateSettings, LLMSettings


@dataclass(frozen=True)
class Completion:
    text: str
    completion_tokens: int
    finish_reason: str | None
    prompt_tokens: int = 0


OPTIONAL_FIELDS = ("top_k", "response_format", "chat_template_kwargs")
POOL_SIZE = 8
"""Connections per httpx pool; a client opens ceil(concurrency / POOL_SIZE) pools."""


def negatives_schema(count: int, min_words: int, max_tokens: int) -> dict[str, Any]:
    """Constrained decoding (llama.cpp grammars, vLLM guided decoding, OpenAI structured outputs)
    makes even a 135M model answer with exactly ``count`` passages that parse. Each passage is
    capped so that all of them fit in ``max_tokens`` (English runs ~4 characters a token; 2.5
    leaves room for JSON and rarer words): a cut-off answer would lose its last passages."""
    longest = max(6 * min_words + 20, min(1500, int(2.5 * max_tokens / count)))
    passage = {"type": "string", "minLength": 6 * min_words, "maxLength": longest}
    schema = {
        "type": "object",
        "properties": {
            "negatives": {"type": "array", "items": passage, "minItems": count, "maxItems": count}
        },
        "required": ["negatives"],
    }
    return {"type": "json_schema", "json_schema": {"name": "hard_negatives", "schema": schema}}


def swaps_schema(count: int, candidates: list[str] | None = None) -> dict[str, Any]:
    """Exactly ``count`` short (from, to) substitutions: a few dozen tokens an answer. With
    ``candidates`` (the positive's content phrases), 'from' must be one of them: a small model then
    cannot copy the prompt's example or invent a phrase the passage lacks."""
    phrase = {"type": "string", "minLength": 1, "maxLength": 80}
    source = {"type": "string", "enum": candidates} if candidates else phrase
    swap = {
        "type": "object",
        "properties": {"from": source, "to": phrase},
        "required": ["from", "to"],
    }
    schema = {
        "type": "object",
        "properties": {"swaps": {"type": "array", "items": swap, "minItems": count, "maxItems": count}},
        "required": ["swaps"],
    }
    return {"type": "json_schema", "json_schema": {"name": "substitutions", "schema": schema}}


def request_body(
    config: GenerateSettings,
    messages: list[dict[str, str]] | str,
    count: int,
    attempt: int = 0,
    positive: str | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    """The full request for ``count`` negatives (chat ``messages``, or a completion prompt string):
    what the server is asked and, hashed, the key of its stored answer (model, rendered prompt,
    sampling, schema, thinking switch). A re-ask shifts the seed by its attempt number: the same
    prompt and seed would return the same junk."""
    body = sampling_body(config, messages, attempt)
    if isinstance(messages, str):
        return body  # a few-shot prompt sets the answer's shape; schemas and chat switches do not apply
    if config.structured_output and config.mode == "swap":
        focus = query if config.swap_from == "query" else None
        body["response_format"] = swaps_schema(count, swap_candidates(positive, focus) if positive else None)
    elif config.structured_output:
        body["response_format"] = negatives_schema(
            count, config.rejects.min_words, config.sampling.max_tokens
        )
    if config.disable_thinking:
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


def sampling_body(
    config: LLMSettings, messages: list[dict[str, str]] | str, attempt: int = 0
) -> dict[str, Any]:
    """What every request to ``config.model`` carries: the prompt (chat ``messages`` or a completion
    string), the sampling settings and stop sequences."""
    sampling = config.sampling
    completion = isinstance(messages, str)
    body: dict[str, Any] = {
        "model": config.model,
        **({"prompt": messages} if completion else {"messages": messages}),
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "max_tokens": sampling.max_tokens,
    }
    for name in ("frequency_penalty", "presence_penalty", "top_k"):
        if getattr(sampling, name) is not None:
            body[name] = getattr(sampling, name)
    if sampling.seed is not None:
        body["seed"] = sampling.seed + attempt
    stop = sampling.stop if sampling.stop is not None else (["\n\n"] if completion else None)
    if stop:
        body["stop"] = stop
    body.update(sampling.extra)
    return body


class EndpointRefused(HardnegError):
    """A 4xx other than 429: the request as sent is refused (a wrong model name, a bad key)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

    def __reduce__(self):
        return (EndpointRefused, (self.status, str(self)))


class Retryable(Exception):
    def __init__(self, kind: str, detail: str, retry_after: float | None = None, overload: bool = False):
        super().__init__(detail)
        self.kind = kind
        self.retry_after = retry_after
        self.overload = overload
        """A sign the server has more than it can take (a dropped connection, a timeout, 429, 503):
        it lowers the endpoint's limit on requests in flight."""


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _completion(response: httpx.Response) -> Completion:
    try:
        body = response.json()
        choice = body["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        usage = body.get("usage") or {}
        tokens = int(usage.get("completion_tokens") or 0), int(usage.get("prompt_tokens") or 0)
        return Completion(text, tokens[0], choice.get("finish_reason"), tokens[1])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise Retryable("malformed", f"malformed response ({exc.__class__.__name__}: {exc})") from None


class ChatClient:
    """Sends requests to ``{base_url}/chat/completions`` (or ``/completions`` with api='completions');
    ``stats`` counts every fault seen."""

    def __init__(self, base_url: str, config: LLMSettings, seed: int = 0):
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + ("/completions" if config.api == "completions" else "/chat/completions")
        self.config = config
        self.refused: set[str] = set()
        self.stats: Counter[str] = Counter()
        self._random = random.Random(seed)
        headers = {}
        key = os.environ.get(config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # httpcore scans its whole pool on every request and answer: pools of POOL_SIZE connections,
        # the least busy first, keep that cost flat at high concurrency (benchmarks/generate_fleet.py).
        sizes = [
            min(POOL_SIZE, config.concurrency - start) for start in range(0, config.concurrency, POOL_SIZE)
        ]
        self._pools = [
            httpx.AsyncClient(
                headers=headers,
                timeout=config.timeout,
                limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
            )
            for size in sizes
        ]
        self._busy = [0] * len(self._pools)

    def without_refused(self, body: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in body.items() if name not in self.refused}

    def _refused_field(self, response: httpx.Response, body: dict[str, Any]) -> str | None:
        if response.status_code != 400:
            return None
        return next((f for f in OPTIONAL_FIELDS if f in body and f in response.text), None)

    async def _send(self, request: dict[str, Any]) -> Completion:
        body = self.without_refused(request)
        try:
            pool = self._busy.index(min(self._busy))  # the least busy pool: slow answers pile up in none
            self._busy[pool] += 1
            try:
                response = await self._pools[pool].post(self.url, json=body)
            finally:
                self._busy[pool] -= 1
        except httpx.TimeoutException as exc:
            raise Retryable(
                "timeout",
                f"timed out after {self.config.timeout:g} s ({exc.__class__.__name__})",
                overload=True,
            ) from None
        except httpx.TransportError as exc:  # str() of a reset connection's ReadError is empty
            detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
            raise Retryable("connection_error", detail, overload=True) from None
        if response.status_code == 429:
            raise Retryable("rate_limited", "429 Too Many Requests", _retry_after(response), overload=True)
        if response.status_code >= 500:
            status = f"{response.status_code} {response.reason_phrase}"
            raise Retryable("server_error", status, _retry_after(response), response.status_code == 503)
        refused = self._refused_field(response, body)
        if refused is not None:
            self.refused.add(refused)
            self.stats[f"{refused}_refused"] += 1
            return await self._send(request)
        if response.status_code >= 400:
            raise EndpointRefused(
                response.status_code,
                f"{self.url} answered {response.status_code} {response.reason_phrase}: "
                f"{response.text[:200].strip()}",
            )
        return _completion(response)

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After wins when it asks for more."""
        cap = min(self.config.backoff_max, self.config.backoff * 2 ** min(retry, 30))
        wait = self._random.uniform(cap / 2, cap)
        return max(wait, min(retry_after or 0.0, self.config.backoff_max))

    async def complete(self, request: dict[str, Any]) -> Completion:
        """The answer to a request built by ``request_body``, from this endpoint alone."""
        return await EndpointPool([self], self.config).complete(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


COOLING_FAULTS = {"timeout", "connection_error", "server_error", "rate_limited"}
"""Faults that say the endpoint, not the answer, is the problem: they lower its limit or cool it down,
and a request keeps retrying them while the pool still answers (``give_up_after``)."""


class EndpointPool:
    """Several servers of one model as one client: each request goes to the endpoint with the fewest
    requests in flight among those below their limit and not cooling down. An overloaded endpoint
    (dropped connections, 429, 503) gets its limit halved; one that is down (the lowered limit brought
    no answer, a timeout, another 5xx, a Retry-After) sits out a cool-down and the request goes
    elsewhere; after the cool-down it gets one trial request, and its first answer ends its penalty."""

    def __init__(self, clients: list[ChatClient], config: LLMSettings):
        self.endpoints = [Endpoint(client, AdaptiveLimit(config.concurrency)) for client in clients]
        self.config = config
        self.last_answer: float | None = None
        """loop.time() of the pool's last answer: while recent, faults do not use up a request's retries."""
        self._waiters = Waiters()

    @classmethod
    def open(cls, urls: list[str], config: LLMSettings) -> EndpointPool:
        return cls([ChatClient(url, config, seed=i) for i, url in enumerate(urls)], config)

    async def _pick(self) -> Endpoint:
        """The least busy endpoint that can take a request; else wait for a slot or a cool-down's end."""
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            ready = [e for e in self.endpoints if e.open(now)]
            if ready:
                return min(ready, key=lambda e: (e.in_flight, e.counts["requests"]))
            later = [e.ready_at for e in self.endpoints if e.ready_at > now]
            await self._waiters.wait(min(later) - now if later else None)

    def _answered(self, endpoint: Endpoint, completion: Completion) -> None:
        self.last_answer = asyncio.get_running_loop().time()
        if endpoint.failures:
            self._waiters.wake_all()  # back to its whole limit
        if endpoint.limit.answered():
            self._waiters.wake()
        endpoint.failures, endpoint.refused = 0, None
        endpoint.counts["answered"] += 1
        endpoint.counts["prompt_tokens"] += completion.prompt_tokens
        endpoint.counts["completion_tokens"] += completion.completion_tokens

    def _give_up(self, client: ChatClient, tries: int, fault: Exception) -> HardnegError:
        silent = ""
        if self.last_answer is not None:
            silent = f" ({asyncio.get_running_loop().time() - self.last_answer:.1f} s without an answer)"
        return HardnegError(f"{client.url}: gave up after {tries} attempts, last: {fault}{silent}")

    async def complete(self, request: dict[str, Any]) -> Completion:
        """The answer, from whichever endpoint gives it. A request gives up after ``max_retries`` plus
        one per endpoint attempts; faults of a busy or absent server (COOLING_FAULTS) count toward that
        only while no endpoint has answered for ``give_up_after`` seconds."""
        attempts = self.config.max_retries + len(self.endpoints)
        loop = asyncio.get_running_loop()
        tries = counted = 0
        while True:
            endpoint = await self._pick()
            client, epoch = endpoint.client, endpoint.limit.epoch
            endpoint.in_flight += 1
            endpoint.counts["requests"] += 1
            tries += 1
            try:
                completion = await client._send(request)
                error = None
            except (EndpointRefused, Retryable) as failure:
                error = failure
            finally:
                endpoint.in_flight -= 1
                self._waiters.wake()
            if error is None:
                self._answered(endpoint, completion)
                return completion
            counted += self._record(endpoint, error)
            if counted >= attempts:
                raise error if isinstance(error, EndpointRefused) else self._give_up(client, tries, error)
            cooled = self._set_back(endpoint, error, epoch)
            now = loop.time()
            if not cooled and not any(e.open(now) for e in self.endpoints if e is not endpoint):
                await asyncio.sleep(client.delay(tries - 1, getattr(error, "retry_after", None)))

    def _record(self, endpoint: Endpoint, error: Exception) -> bool:
        """Count the fault; True when it uses up one of the request's retries."""
        if isinstance(error, EndpointRefused):
            # One server of several that refuses (a model still loading: 404) is taken out; when
            # every endpoint refuses, the request itself is wrong: fail at once, in one line.
            endpoint.refused = error
            endpoint.counts[f"refused_{error.status}"] += 1
            if all(e.refused for e in self.endpoints):
                raise error
            return True
        endpoint.client.stats[error.kind] += 1
        endpoint.counts[f"fault_{error.kind}"] += 1
        now = asyncio.get_running_loop().time()
        lately = self.last_answer is not None and now - self.last_answer < self.config.give_up_after
        return not (lately and error.kind in COOLING_FAULTS)

    def _set_back(self, endpoint: Endpoint, error: Exception, epoch: int) -> bool:
        """Lower or cool down the endpoint before the retry; True when it cools down."""
        if isinstance(error, EndpointRefused):
            return endpoint.set_back(Retryable("refused", str(error)), epoch)
        endpoint.client.stats["retries"] += 1
        return error.kind in COOLING_FAULTS and endpoint.set_back(error, epoch)

    def load(self) -> str:
        """Requests in flight and the limit they are held to, for the progress bar."""
        in_flight = sum(e.in_flight for e in self.endpoints)
        limit = min(self.config.concurrency, sum(e.limit.limit for e in self.endpoints))
        lowered = f" (lowered from {self.config.concurrency})" if limit < self.config.concurrency else ""
        return f"in flight {in_flight}/{limit}{lowered}"

    @property
    def stats(self) -> Counter:
        total: Counter = Counter()
        for endpoint in self.endpoints:
            total.update(endpoint.client.stats)
        return total

    @property
    def refused(self) -> set[str]:
        return set().union(*(e.client.refused for e in self.endpoints))

    def per_endpoint(self) -> dict[str, dict[str, int]]:
        """Requests, answers, faults, tokens and the limit's lowest and final value per endpoint."""
        return {
            e.client.base_url: dict(sorted({**e.counts, **e.limit.counts()}.items())) for e in self.endpoints
        }

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            await endpoint.client.aclose()
