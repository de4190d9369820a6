"""Content terms: the words of a text that carry meaning, lower-cased and lightly stemmed.

Three places compare texts by their words and must agree on what a word is: the full-text
query built from a question, the relevance gate on what search found (how much of the
question a chunk covers), and the grounding score (how much of an answer sentence a source
supports). Ranking itself is FTS5's `bm25()` (PostgreSQL's `ts_rank_cd`), never this module.

The stemmer is deliberately light (plural, -ing, -ed, a final e: "resuming", "resumed" and
"resumes" all become "resum"); a full Porter stemmer would add little for comparing a sentence
with the passage it came from, and FTS5 applies the real one to the index.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)

# Function words and question scaffolding: they match everything and mean nothing here.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can cannot could did do does doing done down
    during each either else etc every few for from further get gets got had has have having
    he her here hers him his how i if in into is it its itself just let like may me might
    more most much must my no nor not now of off on once one only or other our ours out over
    own per please same shall she should so some such than that the their theirs them then
    there these they this those through to too under until up upon us use used uses using
    very via was we were what when where which while who whom whose why will with within
    without would yes yet you your yours
    """.split()  # noqa: SIM905  (a list literal of 150 words would fill three screens)
)


def words(text: str) -> list[str]:
    """Every word of `text`, lower-cased, in order (letters and digits; apostrophes inside)."""
    return [w.replace("’", "'") for w in _WORD.findall(text.lower())]


def stem(word: str) -> str:
    """A light suffix stripper; see the module docstring."""
    w = word.removesuffix("'s")
    if len(w) <= 3:
        return w
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("sses") or w.endswith(("ches", "shes", "xes", "zes")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    if w.endswith("ing") and len(w) > 5:
        w = _undouble(w[:-3])
    elif w.endswith("ed") and len(w) > 4:
        w = _undouble(w[:-2])
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


def _undouble(w: str) -> str:
    """dropp → drop, cancell → cancel; but keep "ss" and "ll"-less stems as they are."""
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouslz":
        return w[:-1]
    if len(w) > 4 and w.endswith("ll"):
        return w[:-1]
    return w


def terms(text: str) -> list[str]:
    """The content terms of `text`, in order, repeats kept: stopwords and one-letter words
    dropped, the rest stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]


def term_set(text: str) -> frozenset[str]:
    return frozenset(terms(text))
