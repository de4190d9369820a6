"""Loaders: the bytes of a .txt, .md, .html or .pdf file → its title and plain text.

A document's type comes from its file name's extension, checked against its content (a PDF
must start with `%PDF-`; text must be UTF-8 without NUL bytes), so a renamed binary is refused
instead of being indexed as noise. Every refusal is an `ApiError` subclass: the upload route
turns it into a 4xx JSON body, the `ingest` command into a message; both store nothing.

HTML keeps only the text a reader sees (no scripts, styles or markup), and its `<h1>`–`<h6>`
become Markdown headings, so one chunker serves Markdown and HTML alike.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePath

from ssechat.errors import ApiError, BadRequest, PayloadTooLarge

MIME_TYPES = {
    ".txt": "text/plain",
    ".text": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".pdf": "application/pdf",
}
_BY_CONTENT_TYPE = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/x-markdown": ".md",
    "text/html": ".html",
    "application/pdf": ".pdf",
}


class UnsupportedDocumentType(ApiError):
    code = "unsupported_document_type"
    status = 415


class EmptyDocument(BadRequest):
    code = "empty_document"


class UnreadableDocument(ApiError):
    code = "unreadable_document"
    status = 422


class DocumentTooLarge(PayloadTooLarge):
    code = "document_too_large"


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    title: str
    text: str  # Markdown-ish: `#` headings (Markdown, HTML) and blank-line paragraphs
    mime: str


def mime_for(filename: str, content_type: str | None = None) -> str:
    """The document type of `filename` (or, with no known extension, of `content_type`);
    `UnsupportedDocumentType` for anything else."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in MIME_TYPES and content_type:
        suffix = _BY_CONTENT_TYPE.get(content_type.split(";")[0].strip().lower(), suffix)
    try:
        return MIME_TYPES[suffix]
    except KeyError:
        known = ", ".join(sorted({s for s in MIME_TYPES if s in (".txt", ".md", ".html", ".pdf")}))
        raise UnsupportedDocumentType(
            f"{filename or 'the file'}: unsupported type {suffix or '(no extension)'}; "
            f"supported: {known}"
        ) from None


def load(
    filename: str, data: bytes, *, mime: str | None = None, max_bytes: int = 0
) -> LoadedDocument:
    """Title and text of a document; raises an `ApiError` subclass for anything unusable."""
    mime = mime or mime_for(filename)
    if max_bytes and len(data) > max_bytes:
        raise DocumentTooLarge(f"{filename}: {len(data)} bytes; the limit is {max_bytes}")
    if not data.strip():
        raise EmptyDocument(f"{filename}: the file is empty")
    stem = PurePath(filename).stem or filename
    if mime == "application/pdf":
        title, text = _pdf(filename, data)
    else:
        raw = _decode(filename, data)
        if mime == "text/html":
            title, text = _html(raw)
        elif mime == "text/markdown":
            title, text = _markdown_title(raw), raw
        else:
            title, text = "", raw
    text = _normalise(text)
    if not text.strip():
        raise EmptyDocument(f"{filename}: no text in it")
    return LoadedDocument(title.strip() or stem, text, mime)


def _decode(filename: str, data: bytes) -> str:
    if b"\x00" in data:
        raise UnreadableDocument(f"{filename}: binary content, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableDocument(f"{filename}: not UTF-8 text ({exc.reason})") from None


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _markdown_title(text: str) -> str:
    fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        elif not fence and (m := re.match(r"#\s+(.+?)\s*#*\s*$", line)):
            return m.group(1)
    return ""


# -- PDF ------------------------------------------------------------------------------------


def _pdf(filename: str, data: bytes) -> tuple[str, str]:
    if not data.lstrip().startswith(b"%PDF-"):
        raise UnreadableDocument(f"{filename}: not a PDF (no %PDF- header)")
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf logs every repair it makes to a damaged file; the outcome is what matters here.
    pypdf_log = logging.getLogger("pypdf")
    level = pypdf_log.level
    pypdf_log.setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(f"{filename}: the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = str(reader.metadata.get("/Title") or "") if reader.metadata else ""
    except UnreadableDocument:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        # pypdf signals a damaged file with its own errors and, deeper down, with plain ones.
        raise UnreadableDocument(f"{filename}: malformed PDF ({exc})") from None
    finally:
        pypdf_log.setLevel(level)
    if not any(p.strip() for p in pages):
        raise EmptyDocument(f"{filename}: the PDF has no extractable text (scanned?)")
    return title, "\n\n".join(p.strip() for p in pages if p.strip())


# -- HTML -----------------------------------------------------------------------------------

_BLOCK = frozenset(
    """address article aside blockquote br dd div dl dt figcaption figure footer form header
    hr li main nav ol p pre section table tbody td tfoot th thead tr ul""".split()  # noqa: SIM905
)
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: list[str] = []
        self._skip = 0
        self._in_title = False
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP:
            self._skip += 1
        elif tag in _HEADINGS:
            self.parts.append("\n\n" + "#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCK:
            self.parts.append("\n\n" if tag not in ("br", "li", "tr", "dt", "dd") else "\n")
            if tag == "pre":
                self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP:
            self._skip = max(self._skip - 1, 0)
        elif tag in _HEADINGS or tag in _BLOCK:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre = max(self._pre - 1, 0)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        if self._skip:
            return
        self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def _html(raw: str) -> tuple[str, str]:
    parser = _TextExtractor()
    parser.feed(raw)
    parser.close()
    text = "".join(parser.parts)
    # Headings on one line each; spaces collapsed around the breaks the tags introduced.
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
    title = " ".join("".join(parser.title).split())
    if not title:
        title = _markdown_title(text)
    return title, text
