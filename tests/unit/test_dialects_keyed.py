"""Seed 001's dialect (ssechat.dialects.keyed): golden bytes, and the one key per message the
seed's client routes on."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ssechat.dialects import Wire, wire_of
from ssechat.dialects.keyed import KeyedRenderer, quality_score
from ssechat.sse import decode
from tests.unit.test_dialects_common import ANSWER, CANCELLED, FAILED, RICH, render


def test_an_answer_is_stage_tokens_metadata_then_done() -> None:
    assert render(KeyedRenderer(), ANSWER) == (
        b'data: {"stage":"generating"}\n\n'
        b'data: {"token":"Hello"}\n\n'
        b'data: {"token":" world"}\n\n'
        b'data: {"metadata":{"model":"m","usage":{"prompt_tokens":5,"completion_tokens":2},'
        b'"timings":{"ttft_ms":12.5,"total_ms":40.0},"quality":null}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_sources_quality_score_follow_ups_and_sql_results_each_have_their_key() -> None:
    assert render(KeyedRenderer(), RICH) == (
        b'data: {"stage":"retrieving"}\n\n'
        b'data: {"sources":[{"chunk_id":"doc-1#0","document_name":"Guide",'
        b'"text":"Paris is the capital.","score":0.9,"uri":"https://example.com/g",'
        b'"metadata":{}},{"chunk_id":"doc-2#3","document_name":"notes.txt","text":"France",'
        b'"score":0.5,"uri":null,"metadata":{"page":3}}]}\n\n'
        b'data: {"stage":"generating"}\n\n'
        b'data: {"token":"Paris"}\n\n'
        b'data: {"sql":"SELECT 1 AS a"}\n\n'
        b'data: {"table":{"columns":["a"],"rows":[[1]],"row_count":1,"truncated":false}}\n\n'
        b'data: {"csv":{"url":"/v1/files/f1.csv","rows":1,"bytes":4}}\n\n'
        b'data: {"token":"."}\n\n'
        b'data: {"follow_up_questions":["Why Paris?"]}\n\n'
        b'data: {"quality_score":0.75}\n\n'
        b'data: {"metadata":{"model":"m","usage":{"prompt_tokens":9,"completion_tokens":2},'
        b'"timings":{"ttft_ms":3.0,"total_ms":9.0},"quality":{"score":0.75,'
        b'"method":"overlap"}}}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_failure_mid_answer_sends_error_then_done() -> None:
    assert render(KeyedRenderer(), FAILED) == (
        b'data: {"token":"Hel"}\n\n'
        b'data: {"error":"the model server went away","code":"model_error"}\n\n'
        b"data: [DONE]\n\n"
    )


def test_a_cancelled_run_sends_error_with_code_cancelled_then_done() -> None:
    assert render(KeyedRenderer(), CANCELLED) == (
        b'data: {"token":"Hel"}\n\n'
        b'data: {"error":"the run was cancelled","code":"cancelled"}\n\n'
        b"data: [DONE]\n\n"
    )


def test_every_message_but_done_has_exactly_one_key() -> None:
    for message in decode([render(KeyedRenderer(), [*RICH[:-1], *FAILED[1:]])]):
        if message.data != "[DONE]":
            keys = set(orjson.loads(message.data))
            assert len(keys) == 1 or keys == {"error", "code"}


@pytest.mark.parametrize(
    ("quality", "score"),
    [
        ({"score": 0.5, "other": 0.9}, 0.5),
        ({"grounded": True, "overlap": 0.25}, 0.25),
        ({"grounding": 1}, 1.0),
        ({"note": "none"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_the_quality_score_is_the_score_else_the_first_number(
    quality: dict[str, Any] | None, score: float | None
) -> None:
    assert quality_score(quality) == score


def test_the_stream_has_no_retry_preamble() -> None:
    assert wire_of(KeyedRenderer()) == Wire(retry=False)
