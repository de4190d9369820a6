"""Chunking (ssechat.retrieval.chunking): headings first, then paragraphs, sized, overlapping."""

from __future__ import annotations

import itertools

import pytest

from ssechat.retrieval.chunking import chunk

DOC = """# Guide

Intro paragraph.

## Install

Run the installer.

```sh
# not a heading
pip install thing

more code
```

### Linux

Use apt.

## Use

Start it.
"""


def test_each_chunk_belongs_to_one_section_and_carries_its_heading_path() -> None:
    chunks = chunk(DOC)
    assert [(c.heading, c.text.splitlines()[0]) for c in chunks] == [
        ("Guide", "Intro paragraph."),
        ("Guide › Install", "Run the installer."),
        ("Guide › Install › Linux", "Use apt."),
        ("Guide › Use", "Start it."),
    ]
    assert [c.ordinal for c in chunks] == [0, 1, 2, 3]


def test_a_hash_line_inside_a_code_fence_is_not_a_heading_and_the_fence_stays_whole() -> None:
    install = chunk(DOC)[1].text
    assert "```sh\n# not a heading\npip install thing\n\nmore code\n```" in install


def test_text_before_any_heading_gets_an_empty_heading() -> None:
    assert [(c.heading, c.text) for c in chunk("Just text.\n\nMore text.")] == [
        ("", "Just text.\n\nMore text.")
    ]


def test_chunks_respect_the_size_and_consecutive_ones_overlap() -> None:
    paragraphs = [f"Paragraph {i} says something about topic {i}." for i in range(40)]
    chunks = chunk("\n\n".join(paragraphs), size=200, overlap=60)
    assert len(chunks) > 5
    assert all(len(c.text) <= 200 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        first_paragraph = after.text.split("\n\n")[0]
        assert before.text.endswith(first_paragraph)  # the overlap: repeated, not lost
    # Every paragraph survives whole somewhere.
    assert all(any(p in c.text for c in chunks) for p in paragraphs)


def test_without_overlap_nothing_is_repeated() -> None:
    paragraphs = [f"Paragraph {i} says something about topic {i}." for i in range(40)]
    chunks = chunk("\n\n".join(paragraphs), size=200, overlap=0)
    assert sum(c.text.count("Paragraph") for c in chunks) == 40


def test_a_paragraph_longer_than_a_chunk_is_cut_at_sentences_then_words() -> None:
    sentence = "This sentence has exactly eight words in it. "
    long_paragraph = (sentence * 30).strip()
    chunks = chunk(long_paragraph, size=300, overlap=0)
    assert all(len(c.text) <= 300 for c in chunks)
    assert all(c.text.endswith(".") for c in chunks)  # cut between sentences
    assert " ".join(c.text for c in chunks) == long_paragraph
    unbroken = "x" * 1000
    assert [len(c.text) for c in chunk(unbroken, size=400, overlap=0)] == [400, 400, 200]


def test_overlap_never_repeats_part_of_a_code_block() -> None:
    code = "```\n" + "\n".join(f"line {i}" for i in range(30)) + "\n```"
    chunks = chunk(f"Intro.\n\n{code}\n\nAfter the code.", size=250, overlap=100)
    assert all(not c.text.startswith("line") for c in chunks)


@pytest.mark.parametrize(("size", "overlap"), [(10, 0), (100, 100), (100, -1)])
def test_nonsense_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        chunk("text", size=size, overlap=overlap)
