"""Deep nesting never loses the rest of a document: each depth of lists, quotes or both is
either read whole (every item, and the chapters after it) or refused naming the line."""

from __future__ import annotations

import re

import pytest

from text_processing.limits import DocumentLimits
from text_processing.structure import split_document
from text_processing.structure.model import LimitError


def bullet_list(depth: int) -> str:
    return "\n".join("    " * i + f"- item at level {i}." for i in range(depth))


def ordered_list(depth: int) -> str:
    return "\n".join("    " * i + f"1. item at level {i}." for i in range(depth))


def quotes(depth: int) -> str:
    return "\n".join(">" * (i + 1) + f" quote at level {i}." for i in range(depth))


def quoted_lists(depth: int) -> str:
    return "\n".join("> " * (i + 1) + f"- item at level {i}." for i in range(depth))


@pytest.mark.parametrize("nest", [bullet_list, ordered_list, quotes, quoted_lists])
@pytest.mark.parametrize("depth", [1, 5, 10, 16, 17, 20, 40, 100])
def test_deep_nesting_is_read_whole_or_refused_naming_the_line(nest, depth: int) -> None:
    body = nest(depth)
    doc = f"# One\n\nFirst chapter text.\n\n{body}\n\n# Two\n\nThe later chapter is here.\n"
    try:
        chapters = split_document(doc, fmt="markdown", limits=DocumentLimits())
    except LimitError as e:
        line = int(re.match(r"line (\d+):", str(e)).group(1))  # type: ignore[union-attr]
        assert 5 <= line < 5 + depth  # inside the nested part
        assert "nested more than 16 levels" in str(e)
        return
    said = [s.text for c in chapters for b in c.blocks for s in b.segments]
    assert [c.title for c in chapters] == ["One", "Two"]
    assert said[-1] == "The later chapter is here."
    for level in range(depth):
        assert any(f"level {level}." in s for s in said), (level, said)


def test_ten_levels_of_list_are_read_not_refused() -> None:
    doc = f"# One\n\n{bullet_list(10)}\n\n# Two\n\nThe end.\n"
    chapters = split_document(doc, fmt="markdown", limits=DocumentLimits())
    assert chapters[-1].blocks[-1].segments[-1].text == "The end."
