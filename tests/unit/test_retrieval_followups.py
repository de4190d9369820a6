"""Follow-up questions (ssechat.retrieval.followups): parsed from what a small model writes;
none rather than invented ones."""

from __future__ import annotations

import pytest

from ssechat.retrieval.followups import messages, parse


@pytest.mark.parametrize(
    "text",
    [
        "1. How do I revoke a key?\n2. Can a key expire?\n3. Where are keys stored?",
        "- How do I revoke a key?\n- Can a key expire?\n- Where are keys stored?",
        "Follow-up questions:\n* How do I revoke a key?\n* Can a key expire?\n"
        "* Where are keys stored?",
        "Q1: How do I revoke a key? Q2: Can a key expire? Q3: Where are keys stored?",
        '"How do I revoke a key?" "Can a key expire?" "Where are keys stored?" Hope this helps!',
        "Keys are hashed. How do I revoke a key? Can a key expire? Where are keys stored?",
    ],
)
def test_numbered_bulleted_labelled_or_run_together_questions_are_found(text: str) -> None:
    assert parse(text) == (
        "How do I revoke a key?",
        "Can a key expire?",
        "Where are keys stored?",
    )


def test_a_dot_inside_a_question_does_not_cut_it() -> None:
    assert parse("Does ssechat.client retry in v1.2?") == ("Does ssechat.client retry in v1.2?",)


def test_statements_give_no_follow_ups_rather_than_invented_ones() -> None:
    assert parse("The key is stored as a hash. You can revoke it with the command.") == ()
    assert parse("") == ()


def test_repeats_fragments_and_the_users_own_question_are_dropped() -> None:
    text = "How do I create a key?\nWhy?\nHow do I revoke a key?\nhow do I REVOKE a key?\n?"
    assert parse(text, question="How do I create a key?") == ("How do I revoke a key?",)


def test_no_more_than_the_limit_are_kept() -> None:
    text = "\n".join(f"What about option number {i}?" for i in range(10))
    assert len(parse(text, limit=3)) == 3
    assert parse(text, limit=0) == ()


def test_a_question_cut_off_by_the_token_limit_is_dropped() -> None:
    assert parse("1. How do I revoke a key?\n2. Can a key expire and what") == (
        "How do I revoke a key?",
    )


def test_the_prompt_carries_the_question_and_the_answer() -> None:
    system, user = messages("How do I create a key?", "With ssechat keys create. ")
    assert system.role == "system"
    assert "follow-up questions" in system.content
    assert user.content == "Question: How do I create a key?\nAnswer: With ssechat keys create."
