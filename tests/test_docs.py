"""The documentation site's Markdown: what `mkdocs build --strict` lets through but renders wrong."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
ITEM = re.compile(r"\s*([-*]|\d+\.) ")


def _prose(page: Path) -> list[tuple[int, str]]:
    """The page's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_list_starts_after_a_blank_line(page):
    """Python-Markdown reads a list that follows a paragraph line as more of the paragraph:
    the bullets would render as dashes inside running text."""
    prose = _prose(page)
    glued = [
        number
        for (_, before), (number, line) in zip(prose, prose[1:], strict=False)
        if ITEM.match(line) and line[0] in "-*0123456789" and before.strip()
        and not ITEM.match(before) and not before.startswith((" ", "|", ">"))
    ]  # fmt: skip
    assert not glued, f"{page.relative_to(DOCS)}: a list glued to the paragraph above, line(s) {glued}"
