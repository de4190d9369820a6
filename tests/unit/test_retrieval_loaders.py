"""Loaders (ssechat.retrieval.loaders): .txt .md .html .pdf → text, and every way a file is
refused before anything is stored."""

from __future__ import annotations

import pytest

from ssechat.errors import ApiError
from ssechat.retrieval.loaders import (
    DocumentTooLarge,
    EmptyDocument,
    UnreadableDocument,
    UnsupportedDocumentType,
    load,
    mime_for,
)


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    """A small valid PDF with one line of Helvetica text per page (offsets computed)."""
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = None
    if title is not None:
        objects.append(f"<< /Title ({title}) >>".encode())
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "")
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_markdown_keeps_its_text_and_takes_its_title_from_the_first_heading() -> None:
    doc = load("guide.md", b"```\n# not this\n```\n\n# The Guide\n\nHello **there**.\n")
    assert doc.title == "The Guide"
    assert doc.mime == "text/markdown"
    assert "Hello **there**." in doc.text


def test_plain_text_is_titled_by_its_file_name_and_loses_a_byte_order_mark() -> None:
    doc = load("notes.txt", "\ufeffLine one.\r\nLine two.\r\n".encode())
    assert (doc.title, doc.text) == ("notes", "Line one.\nLine two.")


def test_html_keeps_only_visible_text_with_headings_as_markdown() -> None:
    html = b"""<html><head><title>Page &amp; Title</title><style>p {color: red}</style>
    <script>var secret = 1;</script></head><body><h1>Welcome</h1><p>First <b>bold</b>
    paragraph.</p><h2>Part two</h2><ul><li>one</li><li>two</li></ul></body></html>"""
    doc = load("page.html", html)
    assert doc.title == "Page & Title"
    assert "# Welcome" in doc.text
    assert "## Part two" in doc.text
    assert "First bold paragraph." in doc.text
    assert "secret" not in doc.text
    assert "color" not in doc.text
    assert "<" not in doc.text


def test_pdf_text_is_extracted_page_by_page_with_its_title() -> None:
    doc = load("paper.pdf", make_pdf(["Grace periods keep runs alive.", "Page two."], "Runs"))
    assert doc.title == "Runs"
    assert doc.mime == "application/pdf"
    assert "Grace periods keep runs alive." in doc.text
    assert "Page two." in doc.text


@pytest.mark.parametrize(
    ("filename", "data", "error", "code"),
    [
        ("image.png", b"\x89PNG....", UnsupportedDocumentType, "unsupported_document_type"),
        ("noextension", b"text", UnsupportedDocumentType, "unsupported_document_type"),
        ("empty.txt", b"", EmptyDocument, "empty_document"),
        ("blank.md", b"  \n\n\t ", EmptyDocument, "empty_document"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog", UnreadableDocument, None),
        ("fake.pdf", b"just text pretending", UnreadableDocument, "unreadable_document"),
        ("binary.txt", b"abc\x00\x01\x02", UnreadableDocument, "unreadable_document"),
        ("latin1.txt", "café".encode("latin-1"), UnreadableDocument, "unreadable_document"),
        ("textless.pdf", make_pdf([""]), EmptyDocument, "empty_document"),
    ],
)
def test_unusable_files_are_refused_with_a_client_error(
    filename: str, data: bytes, error: type[ApiError], code: str | None
) -> None:
    with pytest.raises(error) as raised:
        load(filename, data)
    assert 400 <= raised.value.status < 500
    assert filename in raised.value.message or "type" in raised.value.message
    if code:
        assert raised.value.code == code


def test_a_file_over_the_size_limit_is_refused_as_too_large() -> None:
    with pytest.raises(DocumentTooLarge) as raised:
        load("big.txt", b"x" * 101, max_bytes=100)
    assert raised.value.status == 413
    assert load("fits.txt", b"x" * 100, max_bytes=100).text == "x" * 100


def test_the_type_comes_from_the_extension_or_else_the_content_type() -> None:
    assert mime_for("README.MD") == "text/markdown"
    assert mime_for("page.htm") == "text/html"
    assert mime_for("upload", "application/pdf") == "application/pdf"
    assert mime_for("upload", "text/plain; charset=utf-8") == "text/plain"
    with pytest.raises(UnsupportedDocumentType):
        mime_for("upload", "image/png")
