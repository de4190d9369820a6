"""The grounding score (ssechat.retrieval.grounding) on constructed answers: supported,
unsupported, invalid citations, no citations, declining, and the citation formats small
models write."""

from __future__ import annotations

import pytest

from ssechat.retrieval.grounding import citations, grounding, sentences

SOURCES = [
    "A run whose last client went away keeps generating for a grace period of 30 seconds.",
    "Create an API key with ssechat keys create; only its hash is stored.",
]


def test_an_answer_supported_by_the_sources_it_cites_scores_one() -> None:
    g = grounding(
        "A run keeps generating for a grace period of 30 seconds [1]. "
        "Only the hash of an API key is stored [2].",
        SOURCES,
    )
    assert g.score == pytest.approx(1.0)
    assert (g.sentences, g.supported_sentences, g.citations, g.invalid_citations) == (2, 2, 2, 0)
    assert g.cited_sources == (1, 2)
    assert not g.hallucination


def test_a_supported_answer_without_citations_loses_the_citation_share() -> None:
    g = grounding("The grace period of a run is 30 seconds.", SOURCES)
    assert g.score == pytest.approx(0.8)
    assert g.citations == 0
    assert not g.hallucination


def test_an_answer_the_sources_do_not_support_is_flagged_even_when_it_cites() -> None:
    g = grounding("Paris is the capital of France [1]. Bananas grow on trees [2].", SOURCES)
    assert g.supported_sentences == 0
    assert g.score == pytest.approx(0.2)  # valid citations only
    assert g.hallucination


def test_citing_the_wrong_source_does_not_count_as_support() -> None:
    g = grounding("The grace period of a run is 30 seconds [2].", SOURCES)
    assert g.supported_sentences == 0
    assert g.hallucination


def test_citations_of_sources_that_do_not_exist_lower_the_score() -> None:
    valid = grounding("The grace period of a run is 30 seconds [1].", SOURCES)
    invalid = grounding("The grace period of a run is 30 seconds [7].", SOURCES)
    assert valid.score == pytest.approx(1.0)
    assert invalid.score == pytest.approx(0.8)  # supported, but the one citation is invalid
    assert (invalid.citations, invalid.invalid_citations, invalid.cited_sources) == (1, 1, ())


def test_half_supported_answers_score_in_between_and_the_threshold_decides_the_flag() -> None:
    answer = "The grace period of a run is 30 seconds [1]. The moon is made of cheese [1]."
    g = grounding(answer, SOURCES)
    assert g.score == pytest.approx(0.8 * 0.5 + 0.2)
    assert not g.hallucination
    assert grounding(answer, SOURCES, threshold=0.7).hallucination


def test_restating_the_question_is_no_claim_and_what_is_added_must_be_supported() -> None:
    question = "How long is the grace period of a run?"
    restated = grounding("The grace period of a run is long.", SOURCES, question=question)
    assert (restated.sentences, restated.score) == (0, None)
    invented = grounding(
        "The grace period of a run lasts a day of the month.", SOURCES, question=question
    )
    assert (invented.supported_sentences, invented.hallucination) == (0, True)
    # Without the question the same sentence looks half made of the source's words.
    assert grounding("The grace period of a run lasts a day of the month.", SOURCES).score == 0.8
    answered = grounding("It is 30 seconds [1].", SOURCES, question=question)
    assert answered.score == pytest.approx(1.0)


def test_declining_to_answer_is_not_a_hallucination() -> None:
    g = grounding("I don't know. The sources do not mention it.", SOURCES)
    assert (g.score, g.hallucination, g.sentences) == (None, False, 0)


def test_without_sources_there_is_nothing_to_ground() -> None:
    g = grounding("The grace period is 30 seconds.", [])
    assert (g.score, g.hallucination) == (None, False)
    assert g.as_quality()["grounding_score"] is None


def test_the_quality_reports_the_score_and_its_parts() -> None:
    quality = grounding("The grace period of a run is 30 seconds [1].", SOURCES).as_quality()
    assert quality["grounding_score"] == 1.0
    assert quality["hallucination"] is False
    assert quality["supported_sentences"] == quality["sentences"] == 1
    assert quality["cited_sources"] == [1]
    assert quality["method"] == "lexical-support-v1"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See [1].", [1]),
        ("See [1, 2] and [3].", [1, 2, 3]),
        ("See [1][2].", [1, 2]),
        ("See [2-4].", [2, 3, 4]),
        ("See [Source 2] or [source 1].", [2, 1]),
        ("See (Source 3).", [3]),
        ("See [1 and 2].", [1, 2]),
        ("No citation [a] (2) [].", []),
    ],
)
def test_citation_markers_are_parsed_in_the_forms_small_models_write(
    text: str, expected: list[int]
) -> None:
    assert citations(text) == expected


def test_a_citation_after_a_full_stop_belongs_to_the_sentence_before() -> None:
    assert sentences("Runs resume. [1]\nKeys are hashed! [2] Finished? Done.") == [
        "Runs resume [1].",
        "Keys are hashed [2]!",
        "Finished? Done.",  # "done" is no content word: it joins the sentence before
    ]
