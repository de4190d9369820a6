"""Chunking: a document's text → passages small enough to retrieve and to quote to a model.

The text is cut at headings first (Markdown `#` lines outside code fences; HTML headings
arrive as such from the loader), so a chunk never straddles two sections and carries its
section's heading path ("ssechat › The stream › Resume"). Within a section, paragraphs (blank
lines; a fenced code block counts as one) are packed into chunks of at most `size` characters.
A paragraph longer than that is cut at sentence ends, then at spaces. Consecutive chunks of a
section overlap by about `overlap` characters (whole words from the end of the previous
chunk), so a sentence cut at a boundary is still found whole in one of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
HEADING_SEPARATOR = " › "


@dataclass(frozen=True, slots=True)
class Chunk:
    ordinal: int
    heading: str  # the section's heading path; "" before the first heading
    text: str


@dataclass(slots=True)
class _Section:
    heading: str
    blocks: list[str]


def chunk(text: str, *, size: int = 1000, overlap: int = 150) -> list[Chunk]:
    """Cut `text` into chunks; see the module docstring. `overlap` must be below `size`."""
    if size < 50:
        raise ValueError("chunk size must be at least 50 characters")
    if not 0 <= overlap < size:
        raise ValueError("chunk overlap must be at least 0 and less than the chunk size")
    chunks: list[Chunk] = []
    for section in _sections(text):
        for body in _pack(section.blocks, size, overlap):
            chunks.append(Chunk(len(chunks), section.heading, body))
    return chunks


def _sections(text: str) -> list[_Section]:
    """Sections with their heading paths and blocks (paragraphs, whole code fences)."""
    sections = [_Section("", [])]
    path: list[tuple[int, str]] = []
    block: list[str] = []
    fence: str | None = None

    def end_block() -> None:
        if block and any(line.strip() for line in block):
            sections[-1].blocks.append("\n".join(block).strip("\n"))
        block.clear()

    for line in text.split("\n"):
        if fence is not None:
            block.append(line)
            if line.strip().startswith(fence):
                fence = None
                end_block()
            continue
        if m := _FENCE.match(line):
            end_block()
            fence = m.group(1)
            block.append(line)
        elif m := _HEADING.match(line):
            end_block()
            level, title = len(m.group(1)), m.group(2)
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            sections.append(_Section(HEADING_SEPARATOR.join(t for _, t in path), []))
        elif not line.strip():
            end_block()
        else:
            block.append(line)
    end_block()
    return [s for s in sections if s.blocks]


def _pack(blocks: list[str], size: int, overlap: int) -> list[str]:
    pieces = [piece for b in blocks for piece in _split(b, size)]
    chunks: list[str] = []
    current: list[str] = []
    for piece in pieces:
        if current and _length([*current, piece]) > size:
            chunks.append("\n\n".join(current))
            carried = _overlap(current, overlap)
            current = carried if _length([*carried, piece]) <= size else []
        current.append(piece)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _length(pieces: list[str]) -> int:
    return sum(len(p) for p in pieces) + 2 * (len(pieces) - 1)


def _overlap(pieces: list[str], overlap: int) -> list[str]:
    """What the next chunk repeats of this one: its last whole paragraphs within `overlap`
    characters, or else the end of its last paragraph from a word on (never part of a code
    block or a table, which are meaningless cut)."""
    kept: list[str] = []
    for piece in reversed(pieces):
        if _length([piece, *kept]) > overlap:
            break
        kept.insert(0, piece)
    if kept or overlap <= 0:
        return kept
    last = pieces[-1]
    if last.lstrip().startswith(("```", "~~~", "|", "    ")):
        return []
    tail = last[-overlap:]
    if not last[-overlap - 1].isspace():
        tail = tail.split(maxsplit=1)[1] if len(tail.split(maxsplit=1)) > 1 else ""
    return [tail.strip()] if tail.strip() else []


def _split(block: str, size: int) -> list[str]:
    """A block of at most `size` characters: itself; else cut at line ends (wrapped prose,
    code) or, for one long line, at sentence ends; a unit still too long, at spaces."""
    if len(block) <= size:
        return [block]
    sep = "\n" if "\n" in block else " "
    units = block.split("\n") if sep == "\n" else _SENTENCE_END.split(block)
    parts: list[str] = []
    current = ""
    for unit in units:
        for piece in _hard_wrap(unit, size):
            if current and len(current) + 1 + len(piece) > size:
                parts.append(current)
                current = piece
            else:
                current = f"{current}{sep}{piece}" if current else piece
    if current:
        parts.append(current)
    return parts


def _hard_wrap(text: str, size: int) -> list[str]:
    if len(text) <= size:
        return [text]
    out: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > size:  # a single "word" longer than a chunk: cut it anywhere
            if current:
                out.append(current)
                current = ""
            out.append(word[:size])
            word = word[size:]
        if current and len(current) + 1 + len(word) > size:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        out.append(current)
    return out
