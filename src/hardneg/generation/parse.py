"""From an LLM's answer to candidate negatives, and the rules that reject bad ones.

Models answer in many shapes even when asked for JSON: a bare array, a fenced block, an object
wrapping the array, a numbered or bulleted list, with or without a ``<think>`` preamble. Parsing
accepts all of them; the rejects then decide what counts as a passage.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from hardneg.data.records import normalize_text
from hardneg.settings.llm import RejectSettings

THINK_BLOCK = re.compile(r"<think>.*?(</think>|\Z)", re.DOTALL | re.IGNORECASE)
FENCE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)
LIST_ITEM = re.compile(
    r"^\s*(?:\d{1,2}\s*[.):]|[-*•+]|(?:passage|negative)\s*\d{1,2}\s*[.):])\s+(.*)$", re.IGNORECASE
)
LEADING_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:hard\s+)?(?:negative(?:\s+passage)?|passage)\s*\d*\s*(?:\*\*)?\s*[:.)-]\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
LEADING_NUMBER = re.compile(r"^\s*\d{1,2}[.)]\s+")  # "3. " inside a JSON string
LONGEST_WORD = 45  # characters; longer "words" are run-together junk (ids, timestamps, repeated syllables)
MIN_DISTINCT_RATIO = 0.4  # distinct words / words, for texts of 12+ words
TEXT_FIELDS = ("text", "passage", "negative", "content")
REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry|i am sorry|sorry,|i cannot|i can'?t|i can not|as an ai|i'?m unable|i am unable|"
    r"i won'?t|unfortunately,? i)",
    re.IGNORECASE,
)
PROMPT_ECHO = ("hard negative", "negative passage", "json array", "relevant passage", "search query")
WORD = re.compile(r"\w+")
JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(?=[,\]])')


def strip_thinking(answer: str) -> str:
    """Drop ``<think>`` blocks, also one cut off by the token limit (everything after it is thought)."""
    return THINK_BLOCK.sub("", answer).strip()


def _strings(value: object) -> list[str] | None:
    """The texts in a parsed JSON value, or None when it has no list of passages."""
    if isinstance(value, dict):
        lists = [v for v in value.values() if isinstance(v, list)]
        return _strings(lists[0]) if len(lists) == 1 else None
    if not isinstance(value, list):
        return None
    texts = []
    for item in value:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict):
            field = next((item[f] for f in TEXT_FIELDS if isinstance(item.get(f), str)), None)
            if field is not None:
                texts.append(field)
    return texts


def _json_candidates(text: str) -> Iterable[str]:
    yield from (match.group(1) for match in FENCE.finditer(text))
    yield text
    for opening, closing in (("[", "]"), ("{", "}")):
        start, end = text.find(opening), text.rfind(closing)
        if 0 <= start < end:
            yield text[start : end + 1]


def _list_items(text: str) -> list[str]:
    """Numbered or bulleted items; an item runs on over wrapped lines until a blank line."""
    items: list[str] = []
    open_item = False
    for line in text.splitlines():
        match = LIST_ITEM.match(line)
        if match:
            items.append(match.group(1).strip())
            open_item = True
        elif open_item and line.strip():
            items[-1] += " " + line.strip()
        else:
            open_item = False  # prose before or after the list is not a passage
    return items


def clean(text: str) -> str:
    """One passage: no label prefix ('Negative 2:'), no wrapping quotes or bold, single spaces."""
    text = LEADING_NUMBER.sub("", LEADING_LABEL.sub("", text.strip()))
    text = text.strip().strip('"').strip("*").strip()
    return re.sub(r"\s+", " ", text)


def parse_answer(answer: str) -> tuple[list[str], str]:
    """Candidate passages and the shape they came in ('json', 'list' or 'none')."""
    text = strip_thinking(answer)
    for candidate in _json_candidates(text):
        try:
            texts = _strings(json.loads(candidate))
        except json.JSONDecodeError:
            continue
        if texts is not None:
            return [clean(t) for t in texts], "json"
    items = _list_items(text)
    if items:
        return [clean(item) for item in items], "list"
    salvaged = _truncated_array(text)
    if salvaged:
        return [clean(t) for t in salvaged], "truncated_json"
    return [], "none"


def _truncated_array(text: str) -> list[str]:
    """The complete strings of a JSON array cut off by the token limit (``["a", "b", "c...``)."""
    start = text.find("[")
    if start < 0 or not text.lstrip("`json \n").startswith(("[", "{")):
        return []
    texts = []
    for match in JSON_STRING.finditer(text, start):
        try:
            texts.append(json.loads(f'"{match.group(1)}"'))
        except json.JSONDecodeError:
            continue
    return texts


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


SWAP_LINE = re.compile(
    r"^\s*(?:\d{1,2}[.)]\s*|[-*•]\s*)?[\"']?(.+?)[\"']?\s*(?:->|=>|→)\s*[\"']?(.+?)[\"']?\s*$"
)


def _pair_of(item: object) -> tuple[str, str] | None:
    if isinstance(item, dict):
        found = [item.get(k) for k in ("from", "to")]
    elif isinstance(item, list) and len(item) == 2:
        found = item
    else:
        return None
    return (found[0], found[1]) if all(isinstance(v, str) for v in found) else None


def parse_swaps(answer: str) -> tuple[list[tuple[str, str]], str]:
    """(from, to) substitutions and the shape they came in: a JSON list of {"from", "to"} objects
    (or of pairs, or an object wrapping the list), else 'from -> to' lines."""
    text = strip_thinking(answer)
    for candidate in _json_candidates(text):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and _pair_of(value) is None:
            lists = [v for v in value.values() if isinstance(v, list)]
            value = lists[0] if len(lists) == 1 else value
        items = value if isinstance(value, list) else [value]
        swaps = [pair for pair in map(_pair_of, items) if pair is not None]
        if swaps:
            return [(a.strip(), b.strip()) for a, b in swaps], "json"
    lines = [SWAP_LINE.match(line) for line in text.splitlines()]
    swaps = [(m.group(1).strip(), m.group(2).strip()) for m in lines if m]
    return (swaps, "list") if swaps else ([], "none")


FUNCTION_WORDS = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the their these this those "
    "to was were which with".split()
)


SWAP_CANDIDATES = 120
"""At most this many phrases offered as a swap's 'from' (a grammar's enum stays small)."""


def content_words(text: str) -> set[str]:
    """Lower-cased words that are not function words (digits count)."""
    return {w for w in WORD.findall(text.lower()) if w not in FUNCTION_WORDS and (len(w) > 2 or w.isdigit())}


def touches(phrase: str, words: set[str]) -> bool:
    """Whether ``phrase`` shares a content word with ``words``, or a 5-letter stem ('flies', 'fly'
    do not; 'aging', 'ageing' do not; 'mutations', 'mutation' do)."""
    return any(
        w in words or (len(w) >= 5 and any(v[:5] == w[:5] for v in words)) for w in content_words(phrase)
    )


def swap_candidates(positive: str, query: str | None = None) -> list[str]:
    """The positive's content words and runs of two and three of them, as written, in order of first
    appearance (function words end a run): what a swap may replace. With ``query``, only those that
    share a content word with it, when there are any."""
    found = _phrases(positive)
    near = query_phrases(found, query) if query is not None else []
    return (near or found)[:SWAP_CANDIDATES]


def asks_about(positive: str, query: str) -> bool:
    """Whether any phrase of ``positive`` (not only the first ``SWAP_CANDIDATES``) touches ``query``:
    then swaps are held to such phrases (``swap_from = 'query'``)."""
    return bool(query_phrases(_phrases(positive), query))


def query_phrases(phrases: list[str], query: str) -> list[str]:
    """The phrases that share a content word (or stem) with ``query``: what it asks about."""
    asked = content_words(query)
    return [phrase for phrase in phrases if touches(phrase, asked)]


def _phrases(positive: str) -> list[str]:
    found: dict[str, None] = {}
    run: list[str] = []
    for match in re.finditer(r"[\w][\w\-%.,]*[\w%]|[\w]", positive):
        word = match.group(0)
        if word.lower() in FUNCTION_WORDS or not (len(word) > 2 or word.isdigit()):
            run = []
            continue
        run.append(word)
        for size in (1, 2, 3):
            if len(run) >= size:
                found.setdefault(" ".join(run[-size:]), None)
    return [phrase for phrase in found if phrase in positive]


SWAP_RULES = 3
"""The version of what turns a stored swap answer into a negative (``apply_swap`` and its rejects):
part of a swap-mode stage's key, so a change here makes new negatives from the same answers. 2:
whole words only ('12' no longer edits '2012'). 3: whole tokens as the swap candidates are cut
('5' no longer edits '2.5', '6' not 'IL-6'), the written case first, a capital only at a sentence
start."""

TOKEN_START = r"(?<!\w)(?<!\w[.,\-])"
"""Not inside a token: no word character, nor one followed by '.', ',' or '-' ('2.5', 'IL-6')."""
TOKEN_END = r"(?![\w%])(?![.,\-]\w)"
SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)$")


def _as_matched(found: str, new: str, before: str) -> str:
    """``new`` capitalised where the text it replaces starts a sentence ('Cancer risk' after '. ' ->
    'Diabetes risk'), unless ``new`` is a symbol with its own case ('p53', 'mTOR')."""
    first = new.split()[0] if new.split() else new
    if found[:1].isupper() and SENTENCE_START.search(before) and first.isalpha() and first.islower():
        return new[:1].upper() + new[1:]
    return new


def _same_case(found: str, old: str) -> bool:
    """Written as ``old`` but for its first letter ('Cancer' for 'cancer'; not 'aids' for 'AIDS')."""
    found, old = " ".join(found.split()), " ".join(old.split())
    return found[1:] == old[1:] and found[:1].lower() == old[:1].lower()


def apply_swap(positive: str, old: str, new: str) -> tuple[str | None, str | None]:
    """The positive with every occurrence of ``old`` as whole tokens (any whitespace between its
    words) replaced by ``new``: the occurrences written as ``old`` is (a capital first letter aside)
    when there are any, else any case. Or a reject reason: 'swap_not_found' when ``old`` is not in
    it, 'swap_unchanged' when nothing changes, 'swap_trivial' when ``old`` holds no content word
    (swapping 'the' or 'of' leaves a near-copy of the positive: a false negative)."""
    old = old.strip()
    if not old:
        return None, "swap_not_found"
    if not content_words(old):
        return None, "swap_trivial"
    words = r"\s+".join(re.escape(word) for word in old.split())
    head = TOKEN_START if re.match(r"\w", old) else ""  # '(IL-6)' brings its own edge
    tail = TOKEN_END if re.match(r"\w", old[-1]) else ""
    found = list(re.finditer(head + words + tail, positive, re.IGNORECASE))
    if not found:
        return None, "swap_not_found"
    found = [m for m in found if _same_case(m.group(0), old)] or found
    edited, end = [], 0
    for match in found:
        edited += [positive[end : match.start()], _as_matched(match.group(0), new, positive[: match.start()])]
        end = match.end()
    edited_text = "".join(edited) + positive[end:]
    if normalize_text(edited_text) == normalize_text(positive):
        return None, "swap_unchanged"
    return edited_text, None


class RejectRules:
    """The reasons a text is not a usable negative for one pair; ``seen`` carries the texts already
    accepted for it, so duplicates across re-asks are caught too. ``max_copy_overlap`` overrides the
    settings' (1.0 for edits of the positive, which share most of its words by design)."""

    def __init__(
        self, query: str, positive: str, settings: RejectSettings, max_copy_overlap: float | None = None
    ):
        self.settings = settings
        self.query = normalize_text(query)
        self.positive = normalize_text(positive)
        self.positive_words = words(positive)
        self.max_copy_overlap = settings.max_copy_overlap if max_copy_overlap is None else max_copy_overlap
        self.seen: set[str] = set()

    def reason(self, text: str) -> str | None:
        normalized = normalize_text(text)
        if not normalized:
            return "empty"
        if REFUSAL.match(normalized) or normalized == self.query or any(p in normalized for p in PROMPT_ECHO):
            return "not_a_passage"
        tokens = normalized.split()
        if max(len(token) for token in tokens) > LONGEST_WORD:
            return "not_a_passage"
        if len(tokens) < self.settings.min_words:
            return "too_short"
        if len(tokens) >= 12 and len(set(tokens)) / len(tokens) < MIN_DISTINCT_RATIO:
            return "repetitive"
        if normalized in self.seen:
            return "duplicate"
        if overlap(words(text), self.positive_words) > self.max_copy_overlap:
            return "near_copy"
        if normalized == self.positive:
            return "unchanged"
        return None

    def accept(self, text: str) -> str | None:
        """The reject reason, or None after remembering the text as accepted."""
        reason = self.reason(text)
        if reason is None:
            self.seen.add(normalize_text(text))
        return reason
