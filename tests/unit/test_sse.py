"""Tests for the SSE wire codec (ssechat.sse), against the WHATWG "Interpreting an event stream"."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssechat.sse import Decoder, ServerSentEvent, decode, encode

BOM = b"\xef\xbb\xbf"


def ev(
    data: str, event: str = "message", id: str = "", retry: int | None = None
) -> ServerSentEvent:
    return ServerSentEvent(data=data, event=event, id=id, retry=retry)


def every_split(stream: bytes) -> list[list[bytes]]:
    """The stream cut once at every position, plus byte by byte."""
    cuts = [[stream[:i], stream[i:]] for i in range(len(stream) + 1)]
    return [*cuts, [stream[i : i + 1] for i in range(len(stream))]]


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- encoder -------------------------------------------------------------------------------


def test_single_line_data_is_one_data_line_and_a_blank_line() -> None:
    assert encode("hello") == b"data: hello\n\n"


def test_output_is_utf8() -> None:
    assert encode("é€😀") == "data: é€😀\n\n".encode()


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_multi_line_data_becomes_several_data_lines(newline: str) -> None:
    assert encode(f"a{newline}b{newline}") == b"data: a\ndata: b\ndata: \n\n"


def test_empty_data_is_sent_as_an_empty_data_line() -> None:
    assert encode("") == b"data: \n\n"


def test_empty_data_is_dispatched_with_empty_data() -> None:
    # spec: "data: " appends "" + LF, so the data buffer is "\n", not empty: dispatched.
    assert decode([encode("")]) == [ev("")]


def test_fields_come_in_order_comment_id_event_retry_data() -> None:
    out = encode("x", event="e", id="7", retry=3000, comment="hi")
    assert out == b": hi\nid: 7\nevent: e\nretry: 3000\ndata: x\n\n"


def test_multi_line_comment_gives_one_colon_line_per_line() -> None:
    assert encode(comment="a\r\nb\rc\nd") == b": a\n: b\n: c\n: d\n\n"


def test_a_pure_comment_is_a_comment_and_a_blank_line() -> None:
    assert encode(comment="ping") == b": ping\n\n"
    assert decode([encode(comment="ping")]) == []


def test_event_and_id_without_data_are_sent_but_not_dispatched() -> None:
    assert encode(event="e", id="1") == b"id: 1\nevent: e\n\n"
    decoder = Decoder()
    assert decoder.feed(encode(event="e", id="1", retry=5)) == []
    assert decoder.last_event_id == "1"
    assert decoder.retry == 5


def test_encoding_nothing_raises() -> None:
    with pytest.raises(ValueError, match="nothing"):
        encode()


def test_values_starting_with_a_space_survive_the_round_trip() -> None:
    assert decode([encode(" x", event=" e", id=" 1")]) == [ev(" x", " e", " 1")]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nb", "\n"])
def test_cr_or_lf_in_event_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="event"):
        encode("x", event=bad)


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\r\nb", "a\0b"])
def test_cr_lf_or_nul_in_id_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="id"):
        encode("x", id=bad)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "5"])
def test_retry_that_is_not_a_non_negative_int_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="retry"):
        encode("x", retry=bad)  # type: ignore[arg-type]


def test_retry_zero_is_allowed() -> None:
    assert encode(retry=0) == b"retry: 0\n\n"


# --- decoder: chunk boundaries -------------------------------------------------------------


def test_an_event_cut_at_every_position_decodes_the_same() -> None:
    stream = b"id: 1\nevent: e\ndata: a\ndata: b\n\n"
    for chunks in every_split(stream):
        assert decode(chunks) == [ev("a\nb", "e", "1")], chunks


@pytest.mark.parametrize("newline", [b"\n", b"\r", b"\r\n"])
def test_every_line_end_style_is_accepted(newline: bytes) -> None:
    stream = b"data: a" + newline + b"data: b" + newline + newline
    for chunks in every_split(stream):
        assert decode(chunks) == [ev("a\nb")], chunks


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    # Two line ends here would be a blank line and dispatch "a" early, then "b" alone.
    assert decode([b"data: a\r", b"\ndata: b\r\n\r\n"]) == [ev("a\nb")]


def test_cr_at_chunk_end_then_cr_is_two_line_ends() -> None:
    assert decode([b"data: a\r", b"\rdata: b\r\r"]) == [ev("a"), ev("b")]


def test_lf_after_a_cr_that_was_not_at_chunk_end_is_a_line_end() -> None:
    # The CR ends "data: a"; the LF ends the line "x" (an unknown field); the last CR is
    # the blank line. Only a CR that is the last byte of a chunk may pair with a next LF.
    assert decode([b"data: a\rx", b"\n\r"]) == [ev("a")]


def test_empty_chunks_change_nothing() -> None:
    assert decode([b"", b"data: a\r", b"", b"\n", b"", b"\n", b""]) == [ev("a")]


@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_utf8_character_cut_at_each_byte_is_decoded_whole(char: str) -> None:
    stream = f"data: {char}{char}\n\n".encode()
    for chunks in every_split(stream):
        assert decode(chunks) == [ev(char * 2)], chunks


def test_invalid_utf8_is_replaced_with_the_replacement_character() -> None:
    # Two invalid bytes, a truncated 3-byte sequence, and a 2-byte sequence cut by the LF.
    stream = b"data: a\xff\xfeb\xe2\x82c\xc3\ndata: d\n\n"
    for chunks in every_split(stream):
        assert decode(chunks) == [ev("a\ufffd\ufffdb\ufffdc\ufffd\nd")], chunks


def test_bom_at_stream_start_is_skipped_even_when_split() -> None:
    for chunks in every_split(BOM + b"data: a\n\n"):
        assert decode(chunks) == [ev("a")], chunks


def test_only_one_bom_is_skipped() -> None:
    # The second BOM is part of the first line's name, so "\ufeffdata" is an unknown field.
    assert decode([BOM + BOM + b"data: a\n\ndata: b\n\n"]) == [ev("b")]


def test_bom_later_in_the_stream_is_not_special() -> None:
    assert decode([b"data: a\n\n" + BOM + b"data: b\n\n"]) == [ev("a")]
    assert decode([b"data: " + BOM + b"b\n\n"]) == [ev("\ufeffb")]


def test_partial_bom_prefix_that_is_not_a_bom_is_kept() -> None:
    assert decode([b"\xef", b"\xbbx\n", b"data: a\n\n"]) == [ev("a")]
    assert decode([b"\xef", b"\n", b"data: a\n\n"]) == [ev("a")]


# --- decoder: field parsing ---------------------------------------------------------------


def test_comments_are_ignored() -> None:
    assert decode([b": hello\ndata: a\n:\n: data: b\n\n"]) == [ev("a")]


def test_only_one_leading_space_is_stripped_from_a_value() -> None:
    assert decode([b"data:a\ndata: b\ndata:  c\n\n"]) == [ev("a\nb\n c")]


def test_a_field_without_colon_has_an_empty_value() -> None:
    assert decode([b"data\ndata\n\n"]) == [ev("\n")]


def test_a_colon_inside_the_value_is_kept() -> None:
    assert decode([b"data: a: b:c\n\n"]) == [ev("a: b:c")]


def test_unknown_fields_are_ignored() -> None:
    assert decode([b"foo: bar\nData: x\ndata: a\nEVENT: e\n\n"]) == [ev("a")]


def test_event_sets_the_type_and_an_empty_event_means_message() -> None:
    assert decode([b"event: add\ndata: a\n\nevent:\ndata: b\n\ndata: c\n\n"]) == [
        ev("a", "add"),
        ev("b"),
        ev("c"),
    ]


def test_id_containing_nul_is_ignored() -> None:
    decoder = Decoder()
    assert decoder.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n") == [
        ev("a", id="1"),
        ev("b", id="1"),
    ]
    assert decoder.last_event_id == "1"


def test_last_event_id_persists_across_events_and_can_be_reset() -> None:
    decoder = Decoder()
    assert decoder.last_event_id == ""
    events = decoder.feed(b"data: a\n\nid: 7\ndata: b\n\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["", "7", "7", ""]
    assert decoder.last_event_id == ""


def test_id_is_set_even_when_no_event_is_dispatched() -> None:
    decoder = Decoder()
    assert decoder.feed(b"id: 9\n\ndata: a\n\n") == [ev("a", id="9")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 5", 5),
        (b"retry:5", 5),
        (b"retry: 0", 0),
        (b"retry: 007", 7),
        (b"retry:  5", None),
        (b"retry: 12a", None),
        (b"retry: ", None),
        (b"retry:", None),
        (b"retry", None),
        (b"retry: -1", None),
        (b"retry: +1", None),
        (b"retry: 1.5", None),
        (b"retry: 5 ", None),
        ("retry: ٣".encode(), None),  # a Unicode digit, not an ASCII one
    ],
)
def test_retry_is_only_accepted_when_all_ascii_digits(line: bytes, expected: int | None) -> None:
    decoder = Decoder()
    assert decoder.feed(line + b"\ndata: a\n\n") == [ev("a", retry=expected)]
    assert decoder.retry == expected


def test_invalid_retry_keeps_the_previous_value() -> None:
    decoder = Decoder()
    events = decoder.feed(b"retry: 100\ndata: a\n\nretry: x\ndata: b\n\n")
    assert events == [ev("a", retry=100), ev("b")]
    assert decoder.retry == 100


def test_a_retry_too_long_to_parse_is_ignored_not_raised() -> None:
    decoder = Decoder()
    events = decoder.feed(b"retry: 1\ndata: a\n\nretry: " + b"9" * 10_000 + b"\ndata: b\n\n")
    assert events == [ev("a", retry=1), ev("b")]
    assert decoder.retry == 1


def test_empty_data_buffer_dispatches_nothing() -> None:
    assert decode([b"\n\n\r\n\r\r\n"]) == []


def test_event_without_data_dispatches_nothing_and_resets_the_type() -> None:
    assert decode([b"event: e\n\ndata: a\n\n"]) == [ev("a")]


def test_trailing_event_without_blank_line_is_discarded() -> None:
    assert decode([b"data: a\n\ndata: b\n"]) == [ev("a")]
    assert decode([b"data: a\n\ndata: b"]) == [ev("a")]


def test_multiple_events_in_one_chunk_are_all_returned_in_order() -> None:
    assert Decoder().feed(b"data: 1\n\ndata: 2\r\n\r\ndata: 3\r\r") == [ev("1"), ev("2"), ev("3")]


def test_events_are_returned_by_the_feed_that_completes_them() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b\n\nda") == [ev("a"), ev("b")]
    assert decoder.feed(b"ta: c\n\n") == [ev("c")]


def test_data_keeps_control_characters_and_unicode_line_separators() -> None:
    data = "a\x00b\x0bc\x0cd\x1ce\x85f\u2028g\u2029h"
    assert decode([encode(data)]) == [ev(data)]


def test_a_long_line_fed_in_many_small_chunks_is_decoded() -> None:
    decoder = Decoder()
    assert decoder.feed(b"data: ") == []
    for _ in range(10_000):
        assert decoder.feed(b"x" * 10) == []
    assert decoder.feed(b"\n\n") == [ev("x" * 100_000)]


# --- properties ----------------------------------------------------------------------------

single_line = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"))


@st.composite
def events(draw: st.DrawFn) -> tuple[str, str | None, str | None, int | None, str | None]:
    return (
        draw(st.text()),
        # NUL is fine in an event type (only ids with NUL are ignored by clients).
        draw(st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n"))),
        draw(st.none() | single_line),
        draw(st.none() | st.integers(min_value=0, max_value=2**40)),
        draw(st.none() | st.text()),
    )


def split_at(data: st.DataObject, stream: bytes) -> list[bytes]:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=300, deadline=None)
@given(st.lists(events(), min_size=1, max_size=5), st.data())
def test_decode_of_encode_round_trips_for_any_chunking(
    evs: list[tuple[str, str | None, str | None, int | None, str | None]], data: st.DataObject
) -> None:
    stream = b"".join(encode(d, event=e, id=i, retry=r, comment=c) for d, e, i, r, c in evs)
    expected = []
    last_id = ""
    for d, e, i, r, _ in evs:
        last_id = i if i is not None else last_id
        expected.append(ServerSentEvent(normalise(d), e or "message", last_id, r))
    assert decode(split_at(data, stream)) == expected


def reference_decode(stream: bytes) -> tuple[list[ServerSentEvent], str, int | None]:
    """A literal, non-incremental reading of the spec, as an oracle."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = re.split("\r\n|\r|\n", text)[:-1]  # the last piece has no line end: discarded
    out: list[ServerSentEvent] = []
    data, etype, last_id, retry, ev_retry = "", "", "", None, None
    for line in lines:
        if line == "":
            if data:
                out.append(ServerSentEvent(data[:-1], etype or "message", last_id, ev_retry))
            data, etype, ev_retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            etype = value
        elif name == "data":
            data += value + "\n"
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and re.fullmatch("[0-9]+", value):
            retry = ev_retry = int(value)
    return out, last_id, retry


# Bytes biased towards the interesting ones: line ends, colons, field names, BOM, UTF-8.
wire_bytes = st.lists(
    st.sampled_from(
        [
            *(b"\r", b"\n", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry", b"1"),
            *(b"x", b"\0", BOM, b"\xef", b"\xbb", "€".encode(), b"\xe2\x82", b"\xff"),
        ]
    )
    | st.binary(max_size=3),
    max_size=40,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(wire_bytes, st.data())
def test_decoder_matches_a_literal_reading_of_the_spec_for_any_chunking(
    stream: bytes, data: st.DataObject
) -> None:
    decoder = Decoder()
    got = [e for chunk in split_at(data, stream) for e in decoder.feed(chunk)]
    assert (got, decoder.last_event_id, decoder.retry) == reference_decode(stream)


@settings(max_examples=300, deadline=None)
@given(wire_bytes)
def test_feeding_byte_by_byte_equals_feeding_all_at_once(stream: bytes) -> None:
    whole, bytewise = Decoder(), Decoder()
    at_once = whole.feed(stream)
    one_by_one = [e for i in range(len(stream)) for e in bytewise.feed(stream[i : i + 1])]
    assert one_by_one == at_once
    assert (bytewise.last_event_id, bytewise.retry) == (whole.last_event_id, whole.retry)
