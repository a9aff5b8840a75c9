"""Every relative link in the README and docs/ leads to a file, and every #anchor to a heading of it:
pages move (docs/results.md became docs/results/study-1.md) and links are easy to leave behind."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKDOWN = MarkdownIt("commonmark")
"""The parser rich already brings: code spans, fences, titles and <...> targets are its business."""


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's rendered text: lower case, punctuation dropped, spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _tokens(page: Path):
    """(numbered lines, token, the token before it) for each block-level token of the page."""
    text = page.read_text().splitlines()
    tokens = MARKDOWN.parse(page.read_text())
    for before, token in zip([None, *tokens], tokens):
        lines = list(enumerate(text[token.map[0] : token.map[1]], token.map[0] + 1)) if token.map else []
        yield lines, token, before


def _inline(page: Path):
    """(lines, inline token, the block that holds it) for each paragraph or heading of the page."""
    return ((lines, token, before) for lines, token, before in _tokens(page) if token.type == "inline")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for _, token, block in _inline(page):
        if block is not None and block.type == "heading_open":
            text = "".join(c.content for c in token.children if c.type in ("text", "code_inline"))
            name = slug(text)
            found.add(f"{name}-{seen[name]}" if name in seen else name)
            seen[name] = seen.get(name, 0) + 1
    return found


HTML_TARGET = re.compile(r"""(?<![\w-])(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
"""A target in raw HTML (<img src=...>, <a href=...>), which markdown leaves to the page."""


def _targets(page: Path):
    """(lines, target) of each link, image and HTML href/src, in the page's order."""
    for lines, token, _ in _tokens(page):
        if token.type == "html_block":
            yield from ((lines, t) for t in HTML_TARGET.findall(token.content))
        for child in token.children if token.type == "inline" else []:
            if child.type in ("link_open", "image"):
                yield lines, str(child.attrs.get("href") or child.attrs.get("src"))
            elif child.type == "html_inline":
                yield from ((lines, t) for t in HTML_TARGET.findall(child.content))


def links(page: Path) -> list[tuple[int, str]]:
    """(line, target) of each relative link and image; http:, https: and mailto: are not ours."""
    found = []
    for lines, raw in _targets(page):
        target = unquote(html.unescape(raw))
        if not re.match(r"[a-z]+:|//", target):
            line = next((n for n, text in lines if raw in text or target in text), lines[0][0])
            found.append((line, target))
    return found


def dangling_references(page: Path) -> list[int]:
    """Lines with a [text][label] that no definition resolves: markdown prints it as plain text
    (an escaped \\[a\\]\\[b\\] is meant as text, and is not found as such in the line)."""
    found = []
    for lines, token, _ in _inline(page):
        for child in (c for c in token.children if c.type == "text"):
            for shown in re.findall(r"\[[^\]]*\]\[[^\]]*\]", child.content):
                found += [n for n, text in lines if shown in text][:1]
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
    broken += [
        f"{page.relative_to(ROOT)}:{n}: a [text][label] with no definition" for n in dangling_references(page)
    ]
    assert not broken, "\n".join(broken)


def test_the_link_reader_follows_markdown(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Setup\n\n## Setup\n\n## See [the guide](other.md)\n\n"
        '[a](<with space.md>) [b](b.md "a title") `[c](c.md)`\n\n'
        "  ```\n  [d](d.md)\n  ```\n~~~\n[e](e.md)\n~~~\n[f](#setup-1)\n"
    )
    assert links(page) == [(5, "other.md"), (7, "with space.md"), (7, "b.md"), (15, "#setup-1")]
    assert anchors(page) == {"setup", "setup-1", "see-the-guide"}


def test_reference_links_and_html_are_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "See [the guide][g] and\n[gone][nowhere].\n\n"
        "Literally \\[a\\]\\[b\\], and [far](//host/x).\n\n"
        '<p align="center"><IMG SRC="img/plot.png" data-src="x.png" width="50%"></p>\n\n'
        'An <a href="other.md#top">inline</a> one.\n\n[g]: guide.md\n'
    )
    assert links(page) == [(1, "guide.md"), (6, "img/plot.png"), (8, "other.md#top")]
    assert dangling_references(page) == [2]


def test_the_slug_follows_github():
    assert (
        slug("`hardneg combine`: sources, strategies, presets")
        == "hardneg-combine-sources-strategies-presets"
    )
    assert slug("Several devices: torchrun, accelerate launch, `[train] processes`") == (
        "several-devices-torchrun-accelerate-launch-train-processes"
    )
