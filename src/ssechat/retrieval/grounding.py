"""Citations and the grounding score: how far an answer stays within its sources.

An answer is split into sentences (at `.`, `!`, `?` and line ends; a fragment with no words,
such as a trailing "[2]", joins the sentence before it). A sentence's claim is what it adds
to the question: its content terms (`terms.py`: no stopwords, lightly stemmed) less the
question's, C(s) = T(s) − T(question). Sentences that only restate the question (C(s) empty)
or decline to answer ("I don't know", "the sources do not say") claim nothing and are not
scored. For each other sentence s:

    support(s)  = max over candidate sources j of |C(s) ∩ T(source j)| / |C(s)|
                  candidates: the valid sources s cites, or every source if it cites none
    supported   = share of scored sentences with support(s) ≥ 0.5
    citations   = valid markers / all markers (0 when the answer cites nothing;
                  a marker is valid when its number names a source: 1 ≤ n ≤ len(sources))
    score       = 0.8 · supported + 0.2 · citations
    hallucination = score < threshold (setting `rag_grounding_threshold`, 0.5)

So a fully supported answer with valid citations scores 1.0; the same answer uncited 0.8; a
sentence that cites [2] for what only [1] says is unsupported; an answer the sources do not
support is flagged whatever it cites. With no sources, or nothing but declining sentences,
there is nothing to ground: the score is None and no hallucination is flagged.

Leaving the question's terms out matters: retrieval found the sources by those very words,
so "The deploy window is on the day of the month" would otherwise look half supported by a
source that says "Our deploy window is Tuesday at noon" when asked about the deploy window.

This is lexical: a faithful paraphrase in other words scores low, and a sentence that copies
a source's words into a false statement scores high. It measures whether an answer is made
of its sources' content, which is what a small model gets wrong most often, not its truth.

Citation markers are parsed leniently, as small models write them: [1], [1, 2], [1-3],
[1][2], [Source 1], (source 2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ssechat.retrieval.terms import term_set, terms

SUPPORT_THRESHOLD = 0.5
SUPPORT_WEIGHT = 0.8
CITATION_WEIGHT = 0.2
_MAX_CITED = 100  # a range like [1-99999] names no more than this

_MARKER = re.compile(
    r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|;|-|–|and)\s*(?:sources?\s*)?\d+)*)\s*\]"
    r"|\(\s*sources?\s*(\d+(?:\s*(?:,|-|–|and)\s*\d+)*)\s*\)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_TRAILING_MARKERS = re.compile(r"([.!?])((?:[ \t]*[\[(][^\])\n]{1,30}[\])])+)")
_DECLINE = re.compile(
    r"\b(?:i\s+(?:do\s+not|don'?t|cannot|can'?t)\s+(?:know|find|answer|say)"
    r"|(?:do|does)\s+not\s+(?:contain|mention|say|cover|provide)"
    r"|(?:doesn'?t|don'?t)\s+(?:contain|mention|say|cover|provide)"
    r"|no\s+(?:information|mention)|not\s+(?:enough|sufficient)\s+information"
    r"|could\s+not\s+find|couldn'?t\s+find)\b",
    re.IGNORECASE,
)


def citations(text: str) -> list[int]:
    """Every source number cited in `text`, in order of appearance (ranges expanded)."""
    cited: list[int] = []
    for match in _MARKER.finditer(text):
        body = match.group(1) or match.group(2)
        for part in re.split(r"\s*(?:,|;|and)\s*", body, flags=re.IGNORECASE):
            numbers = [int(n) for n in re.findall(r"\d+", part)]
            if len(numbers) == 2 and re.search(r"[-–]", part) and numbers[0] <= numbers[1]:
                cited += range(numbers[0], min(numbers[1], numbers[0] + _MAX_CITED) + 1)
            else:
                cited += numbers
    return cited


def strip_citations(text: str) -> str:
    return _MARKER.sub(" ", text)


def sentences(text: str) -> list[str]:
    """The answer's sentences. Markers after a full stop ("Runs resume. [1]") move before it;
    a piece with no content words joins the sentence before it."""
    text = _TRAILING_MARKERS.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    out: list[str] = []
    for piece in _SENTENCE_END.split(text):
        piece = piece.strip()
        if not piece:
            continue
        if out and not terms(strip_citations(piece)):
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


@dataclass(frozen=True, slots=True)
class Grounding:
    score: float | None
    hallucination: bool
    sentences: int  # scored: making a claim
    supported_sentences: int
    citations: int
    invalid_citations: int
    cited_sources: tuple[int, ...]
    threshold: float

    def as_quality(self) -> Mapping[str, Any]:
        """The `quality` of the run's `metadata` event."""
        return {
            "grounding_score": None if self.score is None else round(self.score, 4),
            "hallucination": self.hallucination,
            "threshold": self.threshold,
            "sentences": self.sentences,
            "supported_sentences": self.supported_sentences,
            "citations": self.citations,
            "invalid_citations": self.invalid_citations,
            "cited_sources": list(self.cited_sources),
            "method": "lexical-support-v1",
        }


def grounding(
    answer: str, sources: Sequence[str], *, question: str = "", threshold: float = 0.5
) -> Grounding:
    """The grounding of `answer` to `question` in `sources` (texts, numbered from 1); see the
    module docstring."""
    source_terms = [term_set(s) for s in sources]
    asked = term_set(question)
    markers = citations(answer)
    valid = [n for n in markers if 1 <= n <= len(sources)]
    claims = [s for s in sentences(answer) if not _DECLINE.search(s)]
    claims = [s for s in claims if term_set(strip_citations(s)) - asked]
    supported = sum(_supported(s, asked, source_terms) for s in claims)
    if not sources or not claims:
        score = None
    else:
        citation_score = len(valid) / len(markers) if markers else 0.0
        score = SUPPORT_WEIGHT * supported / len(claims) + CITATION_WEIGHT * citation_score
    return Grounding(
        score=score,
        hallucination=score is not None and score < threshold,
        sentences=len(claims),
        supported_sentences=supported,
        citations=len(markers),
        invalid_citations=len(markers) - len(valid),
        cited_sources=tuple(dict.fromkeys(valid)),
        threshold=threshold,
    )


def _supported(
    sentence: str, asked: frozenset[str], source_terms: Sequence[frozenset[str]]
) -> bool:
    claim = term_set(strip_citations(sentence)) - asked
    if not claim or not source_terms:
        return False
    cited = [n for n in citations(sentence) if 1 <= n <= len(source_terms)]
    candidates = [source_terms[n - 1] for n in cited] or list(source_terms)
    best = max(len(claim & terms_of_source) for terms_of_source in candidates)
    return best / len(claim) >= SUPPORT_THRESHOLD
