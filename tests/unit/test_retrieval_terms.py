"""Content terms (ssechat.retrieval.terms): what search, its relevance gate and the grounding
score agree a word is."""

from __future__ import annotations

import pytest

from ssechat.retrieval.terms import stem, term_set, terms, words


@pytest.mark.parametrize(
    ("forms", "expected"),
    [
        (["resume", "resumes", "resumed", "resuming"], "resum"),
        (["drop", "dropped", "dropping", "drops"], "drop"),
        (["stream", "streams", "streamed", "streaming"], "stream"),
        (["cancel", "cancelled", "cancels"], "cancel"),
        (["query", "queries"], "query"),
        (["process", "processes"], "process"),
    ],
)
def test_inflections_of_a_word_share_one_stem(forms: list[str], expected: str) -> None:
    assert {stem(f) for f in forms} == {expected}


def test_short_words_and_words_ending_in_ss_or_us_keep_their_ending() -> None:
    assert [stem(w) for w in ("key", "pass", "status", "bus")] == ["key", "pass", "status", "bus"]


def test_words_lower_case_and_split_at_punctuation_keeping_inner_apostrophes() -> None:
    assert words("Don't STOP: re-run `ssechat_serve`!") == [
        "don't",
        "stop",
        "re",
        "run",
        "ssechat",
        "serve",
    ]


def test_terms_drop_stopwords_and_single_letters_but_keep_numbers() -> None:
    assert terms("What is the grace period of a run? 30 s") == ["grac", "period", "run", "30"]


def test_term_set_of_a_question_and_of_its_answer_overlap_on_the_meaning() -> None:
    question = term_set("How do I resume a dropped stream?")
    answer = term_set("Streams that dropped are resumed with Last-Event-ID.")
    assert question <= answer
