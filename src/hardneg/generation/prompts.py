"""Prompt templates are files, so a user can read, copy and replace them.

A chat template is the user message; a completion template (api='completions', for base models) is
the whole prompt the model continues, ending where its first passage begins. Either has ``$query``,
``$positive`` and ``$num_negatives`` filled in (``string.Template`` syntax, so JSON braces in a template
need no escaping).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from hardneg.core.errors import HardnegError
from hardneg.settings.llm import CHAT_TEMPLATES, COMPLETION_TEMPLATES

BUILT_IN = CHAT_TEMPLATES + COMPLETION_TEMPLATES
PLACEHOLDERS = ("query", "positive", "num_negatives", "positive_words")
"""``$positive_words``: the positive's length in words, to ask for negatives of a similar length."""
NO_THINK = " /no_think"  # Qwen3's switch in the message, for servers that ignore chat_template_kwargs


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    text: str

    def render(
        self, query: str, positive: str, num_negatives: int, disable_thinking: bool = False
    ) -> list[dict[str, str]]:
        content = self.prompt(query, positive, num_negatives)
        return [{"role": "user", "content": content + (NO_THINK if disable_thinking else "")}]

    def prompt(self, query: str, positive: str, num_negatives: int) -> str:
        """The filled-in text: a chat message's content, or a completion prompt as sent."""
        return self.fill(
            query=query, positive=positive, num_negatives=num_negatives, positive_words=len(positive.split())
        )

    def fill(self, **values: object) -> str:
        return Template(self.text).substitute(**values).strip()


JUDGE_BUILT_IN = ("judge",)
JUDGE_PLACEHOLDERS = ("query", "passage")


def load_template(
    name_or_path: str, built_in: tuple[str, ...] = BUILT_IN, placeholders: tuple[str, ...] = PLACEHOLDERS
) -> PromptTemplate:
    """A built-in template by name, or a template file; checked once so a typo fails before any request.
    Generation's templates by default; the judge's with ``JUDGE_BUILT_IN`` and ``JUDGE_PLACEHOLDERS``."""
    if name_or_path in built_in:
        text = (resources.files("hardneg.generation") / "prompts" / f"{name_or_path}.txt").read_text(
            encoding="utf-8"
        )
        return PromptTemplate(name_or_path, text)
    path = Path(name_or_path)
    if not path.is_file():
        raise HardnegError(f"{path}: prompt template not found (built-in templates: {', '.join(built_in)})")
    text = path.read_text(encoding="utf-8")
    template = Template(text)
    if not template.is_valid():
        raise HardnegError(f"{path}: invalid '$' in the template; write '$$' for a literal dollar sign")
    unknown = sorted(set(template.get_identifiers()) - set(placeholders))
    if unknown:
        raise HardnegError(
            f"{path}: unknown placeholder ${unknown[0]}; "
            f"templates may use {', '.join('$' + p for p in placeholders)}"
        )
    if "query" not in template.get_identifiers():
        raise HardnegError(f"{path}: the template never shows the query ($query)")
    return PromptTemplate(str(path), text)
