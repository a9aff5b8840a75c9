"""Every relative link in the README and docs/ leads to a file, and every #anchor to a heading of it:
pages move (docs/results.md became docs/results/study-1.md) and links are easy to leave behind."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m) for m in re.findall(r"^#{1,6} +(.+?) *$", text, re.M)}


def links(page: Path) -> list[tuple[int, str]]:
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text())  # code is not links
    found = []
    for match in LINK.finditer(text):
        target = match.group(1)
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


def test_the_slug_follows_github():
    assert (
        slug("`hardneg combine`: sources, strategies, presets")
        == "hardneg-combine-sources-strategies-presets"
    )
    assert slug("Several devices: torchrun, accelerate launch, `[train] processes`") == (
        "several-devices-torchrun-accelerate-launch-train-processes"
    )
