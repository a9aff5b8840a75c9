"""An LLM generator's settings: the model and its endpoints, the study's sampling, rejects, the
client's behaviour, and the budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from hardneg.settings.base import DEFAULT_LLM, Settings, comma_list, runtime

CHAT_TEMPLATES = ("query+positive", "query-only", "length-matched", "rewrite", "swap")
EDIT_TEMPLATES = ("rewrite", "swap")
"""Templates whose negatives are the positive edited: the near-copy reject does not apply to them."""


COMPLETION_TEMPLATES = ("few-shot",)


class SamplingSettings(Settings):
    """The reference study's decoding settings."""

    temperature: float = Field(0.6, ge=0)
    """Sampling temperature."""
    top_p: float = Field(0.95, gt=0, le=1)
    """Nucleus sampling: draw from the smallest token set with this probability mass."""
    top_k: int | None = Field(20, gt=0)
    """Sent where the server accepts it (vLLM, llama.cpp, Ollama); dropped once if it refuses."""
    max_tokens: int = Field(1024, gt=0)
    """Token limit per answer."""
    seed: int | None = None
    """Sampling seed sent to the server."""
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    """OpenAI frequency penalty (sent only when set)."""
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    """OpenAI's penalties (not the study's settings; sent only when set): they curb the decoding
    loops small models fall into."""
    stop: list[str] | None = None
    """Stop sequences (None: none for chat; a blank line for api='completions', which ends one
    few-shot example before the model invents the next)."""
    extra: dict[str, Any] = {}
    """Server-specific sampling fields sent as given, e.g. llama.cpp's ``dry_multiplier`` or
    ``repeat_penalty``, vLLM's ``repetition_penalty`` or ``min_p``."""


class RejectSettings(Settings):
    """What a generated text must pass to count as a negative."""

    min_words: int = Field(8, ge=1)
    """Reject negatives shorter than this many words."""
    max_copy_overlap: float = Field(0.7, gt=0, le=1)
    """Word-set Jaccard with the positive above which a text is a near-copy of it. Off for edits of
    the positive (rewrite, swap) at this default; any other value turns it on for them too."""


def parse_budget(text: str) -> tuple[float, str]:
    """'$25' -> (25.0, 'usd'); '2M' / '2000000' / '2e6 tokens' -> (2e6, 'tokens')."""
    raw = text.strip().lower().removesuffix("tokens").strip()
    unit = "usd" if raw.startswith("$") or raw.endswith("usd") else "tokens"
    raw = raw.lstrip("$").removesuffix("usd").strip()
    scale = {"k": 1e3, "m": 1e6, "b": 1e9}.get(raw[-1:], 1.0) if unit == "tokens" else 1.0
    try:
        amount = float(raw[:-1] if scale != 1.0 else raw) * scale
    except ValueError:
        raise ValueError(f"{text!r}: give tokens ('2M', '500000') or dollars ('$25')") from None
    if amount <= 0:
        raise ValueError(f"{text!r}: must be above 0")
    return amount, unit


class LLMSettings(Settings):
    """A model behind OpenAI-compatible endpoint(s), or a GGUF file served in-process when
    ``base_url`` is None, and how the client talks to it: what generation and the judge share."""

    model: str = DEFAULT_LLM
    """Served model name (with ``base_url``), or an embedded GGUF: alias smollm2-135m or a
    .gguf path."""
    base_url: list[str] | None = runtime(None)
    """OpenAI-compatible endpoint(s) serving ``model``, e.g. http://127.0.0.1:8000/v1, or several
    (a list, or comma-separated): each request goes to the least busy one. None serves ``model``
    in-process."""
    api_key_env: str = runtime("OPENAI_API_KEY")
    """Name of the environment variable holding the API key (the key itself is never stored)."""
    api: Literal["chat", "completions"] = "chat"
    """'chat': the template is a chat message (instruct models). 'completions': the template is a raw
    prompt the model continues (base models without a chat template), sent to /v1/completions;
    a generator's answer is then read as 'Passage N:' lines."""
    sampling: SamplingSettings = SamplingSettings()
    concurrency: int = runtime(4, ge=1)
    """Requests in flight at most (and the embedded server's parallel slots unless ``slots`` is set).
    Each endpoint starts there and halves its own limit while it drops connections, times out or
    answers 429/503, then climbs back by one per limit's worth of answers."""
    timeout: float = runtime(300.0, gt=0)
    """Seconds per request."""
    max_retries: int = runtime(5, ge=0)
    """Retries on 429, 5xx, timeouts, dropped connections, malformed answers. Faults of a busy or
    absent server use them up only once no endpoint has answered for ``give_up_after`` seconds."""
    give_up_after: float = runtime(300.0, gt=0)
    """Seconds without any answer from any endpoint before a request's faults count toward
    ``max_retries``: an overloaded server drops some requests but answers others, and a run against it
    should slow down, not end. One that never answered fails after the retries, as a wrong URL should."""
    backoff: float = runtime(1.0, ge=0)
    """First retry delay in seconds; doubles per retry, with jitter, up to ``backoff_max``."""
    backoff_max: float = runtime(30.0, ge=0)
    """Longest retry delay in seconds."""
    slots: int | None = runtime(None, ge=1)
    """Embedded server: parallel decoding slots (default: ``concurrency``)."""
    context_per_slot: int = Field(2048, ge=256)
    """Embedded server: context tokens per decoding slot."""
    port: int = runtime(0, ge=0, le=65535)
    """Embedded server port on 127.0.0.1; 0 picks a free one."""
    threads: int | None = runtime(None, ge=1)
    """Embedded server: CPU threads (default: every CPU)."""

    _endpoints = field_validator("base_url", mode="before")(lambda cls, value: comma_list(value))

    @property
    def embedded(self) -> bool:
        """Served in-process from a GGUF (no ``base_url``): it decodes on this machine's cores."""
        return self.base_url is None

    @property
    def where(self) -> str:
        """The model and where it runs, for the dry run."""
        return f"{self.model} @ {'embedded llama.cpp' if self.embedded else ', '.join(self.base_url)}"


class GenerateSettings(LLMSettings):
    """One generator: the model and its endpoints, the prompt, what to ask for, rejects, budget."""

    prompt_price: float | None = runtime(None, ge=0)
    """Dollars per million prompt tokens: the dry run's cost, and ``max_budget`` in dollars."""
    completion_price: float | None = runtime(None, ge=0)
    """Dollars per million completion tokens."""
    max_budget: str | None = runtime(None)
    """Stop sending once this run has spent it: tokens ('2000000', '2M') or dollars ('$25', needs
    both prices). Requests in flight still land (up to concurrency x max_tokens more). Answers are
    kept; a rerun continues with a new budget."""
    num_negatives: int = Field(5, gt=0)
    """Negatives per pair."""
    template: str = "query+positive"
    """A built-in template name ('query+positive', 'query-only', 'length-matched' (asks for the
    positive's length), 'rewrite' (the positive edited to stop answering), 'swap' (with mode='swap');
    'few-shot' for api='completions') or a path to a template file."""
    mode: Literal["passages", "swap"] = "passages"
    """'passages': the model writes each negative. 'swap': it answers only with substitutions
    (from, to) that are applied to the positive in code, so a negative has the positive's exact
    length and style for a few generated tokens (template 'swap' unless another is given); a swap
    whose 'from' is not in the positive, or that changes nothing, is rejected."""
    swap_from: Literal["any", "query"] = "any"
    """Which phrases of the positive a swap may replace: 'any' content phrase, or only those that
    share a content word with the 'query' (what it asks about: a swap elsewhere leaves an abstract
    that still answers it, a false negative). With 'query' the schema offers only those phrases
    and a swap of another is rejected ('swap_off_query'); a positive without one offers all."""
    structured_output: bool = True
    """Send a JSON schema (``response_format``) so the server constrains decoding to a list of
    passages; dropped once if the server refuses it."""
    disable_thinking: bool = False
    """Ask Qwen3-style chat templates not to think (``enable_thinking: false`` and ``/no_think``)."""
    rejects: RejectSettings = RejectSettings()
    max_attempts: int = Field(3, ge=1)
    """Rounds per pair: the first asks for every negative, each later one for those still missing."""
    negatives_per_request: int | None = Field(None, ge=1)
    """Ask for at most this many negatives per request (None: all at once). Small models stay on
    topic in a short answer and drift into loops in a long one; a round then takes several requests."""
    positive_max_words: int | None = Field(None, gt=0)
    """Show the model at most this many words of the positive (``$positive`` and ``$positive_words``;
    None: all of it). A trainer that cuts texts at 128 tokens never reads past ~90 words, so a
    length-asking or rewriting prompt need not pay for the rest: shorter prompts, shorter answers.
    Swaps are still applied to the whole positive."""

    def shown_positive(self, positive: str) -> str:
        if self.positive_max_words is None:
            return positive
        words = positive.split()
        return (
            positive if len(words) <= self.positive_max_words else " ".join(words[: self.positive_max_words])
        )

    @model_validator(mode="before")
    @classmethod
    def _swap_template(cls, data: Any) -> Any:
        """Swap mode's template is 'swap' unless another one is named (the default one never fits it)."""
        if isinstance(data, dict) and data.get("mode") == "swap":
            if data.get("template", "query+positive") == "query+positive":
                return {**data, "template": "swap"}
        return data

    @property
    def edits_positive(self) -> bool:
        """Its negatives are the positive edited (swap mode, the 'rewrite' template)."""
        return self.mode == "swap" or self.template in EDIT_TEMPLATES

    @property
    def copy_overlap_limit(self) -> float:
        """The near-copy reject's limit: off (1.0) for edits of the positive, unless set."""
        default = type(self.rejects).model_fields["max_copy_overlap"].default
        if self.edits_positive and self.rejects.max_copy_overlap == default:  # (the CLI passes defaults)
            return 1.0
        return self.rejects.max_copy_overlap

    @field_validator("max_budget")
    @classmethod
    def _budget(cls, value: str | None) -> str | None:
        if value is not None:
            parse_budget(value)
        return value

    @model_validator(mode="after")
    def _completion_templates(self) -> GenerateSettings:
        if self.template in COMPLETION_TEMPLATES and self.api != "completions":
            raise ValueError(
                f"template {self.template!r} is a completion prompt for base models: set api = 'completions'"
            )
        if self.mode == "swap" and self.api == "completions":
            raise ValueError("mode 'swap' asks a chat model for substitutions: set api = 'chat'")
        if (self.template == "swap") != (self.mode == "swap") and self.template in CHAT_TEMPLATES:
            raise ValueError("template 'swap' goes with mode = 'swap' (and mode 'swap' with a swap template)")
        if self.api == "completions" and self.template in CHAT_TEMPLATES:
            raise ValueError(
                f"template {self.template!r} is a chat message: api 'completions' needs a completion "
                f"prompt ({', '.join(COMPLETION_TEMPLATES)} or a file)"
            )
        return self

    @model_validator(mode="after")
    def _dollars_need_prices(self) -> GenerateSettings:
        dollars = self.max_budget and parse_budget(self.max_budget)[1] == "usd"
        if dollars and (self.prompt_price is None or self.completion_price is None):
            raise ValueError("a budget in dollars needs prompt_price and completion_price")
        return self


class JudgeSettings(LLMSettings):
    """An LLM asked, per negative, whether it answers the query: a 'yes' is a likely false negative,
    dropped or relabelled as an extra positive (RLHN). Answers are stored and replayed like generation's."""

    action: Literal["drop", "relabel"] = "drop"
    """'drop' a negative the judge says answers the query, or 'relabel' it: it becomes the positive of
    an extra training pair (with the triplet's other negatives)."""
    template: str = "judge"
    """The built-in 'judge' prompt, or a template file with $query and $passage (for api='completions',
    a prompt whose continuation starts with yes or no)."""
    structured_output: bool = True
    """Constrain the answer to {"answer": "yes" | "no"} with a JSON schema (chat api only); dropped
    once if the server refuses it."""
    sampling: SamplingSettings = SamplingSettings(temperature=0.0, max_tokens=24)
    """Greedy and short: a verdict, not prose."""
