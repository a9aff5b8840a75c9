"""Every relative link in the README and docs/ leads to a file, and every #anchor to a heading of it:
pages move (docs/results.md became docs/results/study-1.md) and links are easy to leave behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(<([^>]+)>[^)]*\)|\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^ *(```|~~~).*?^ *\1", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]+`")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text (a link's label, not its target) in lower
    case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().rstrip("#").strip())
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    text = FENCE.sub("", page.read_text())
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        name = slug(heading)
        found.add(f"{name}-{seen[name]}" if name in seen else name)
        seen[name] = seen.get(name, 0) + 1
    return found


def links(page: Path) -> list[tuple[int, str]]:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text())  # code is not links
    text = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), text)
    found = []
    for match in LINK.finditer(text):
        target = match.group(1) or match.group(2)
        if not re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            found.append((text.count("\n", 0, match.start()) + 1, target))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    broken = []
    for line, target in links(page):
        path, _, anchor = target.partition("#")
        where = (page.parent / path).resolve() if path else page
        if not where.exists():
            broken.append(f"{page.relative_to(ROOT)}:{line}: {target}: no such file")
        elif anchor and where.suffix == ".md" and anchor not in anchors(where):
            broken.append(f"{page.relative_to(ROOT)}:{line}: {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_the_link_reader_follows_markdown(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Setup\n\n## Setup\n\n## See [the guide](other.md)\n\n"
        '[a](<with space.md>) [b](b.md "a title") `[c](c.md)`\n\n'
        "  ```\n  [d](d.md)\n  ```\n~~~\n[e](e.md)\n~~~\n[f](#setup-1)\n"
    )
    assert [target for _, target in links(page)] == ["other.md", "with space.md", "b.md", "#setup-1"]
    assert anchors(page) == {"setup", "setup-1", "see-the-guide"}


def test_the_slug_follows_github():
    assert (
        slug("`hardneg combine`: sources, strategies, presets")
        == "hardneg-combine-sources-strategies-presets"
    )
    assert slug("Several devices: torchrun, accelerate launch, `[train] processes`") == (
        "several-devices-torchrun-accelerate-launch-train-processes"
    )
