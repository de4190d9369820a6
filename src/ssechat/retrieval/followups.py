"""Follow-up questions: asked of the model after the answer, parsed from whatever it wrote.

Small models number them, bullet them, label them ("Follow-up questions: …"), put two on one
line or after a statement, or write statements instead. Only sentences phrased as questions
(ending with "?") with a few words are kept, de-duplicated, never the user's own question
back; anything else yields nothing. An empty result is a fine result: no follow-ups are
invented.
"""

from __future__ import annotations

import re

from ssechat.models import Message
from ssechat.retrieval.terms import words

PROMPT = (
    "Write three short follow-up questions the user could ask next about this topic. "
    "Write one question per line, each ending with a question mark."
)
_BULLET = re.compile(
    r"^\s*(?:[-*•·>]+|\(?\d+[.):]|\(?[a-z][.)]|q\d*[.:)]|question\s*\d*[.:)])\s*", re.IGNORECASE
)
_LABEL = re.compile(r"^[^:?]{0,40}:\s+")  # "Follow-up questions: What …?"
_QUOTES = re.compile(r"[\"“”]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")  # "ssechat.client" or "v1.2" are not ends
MIN_WORDS = 3
MAX_CHARS = 200


def messages(question: str, answer: str) -> list[Message]:
    """The model's instructions for the follow-up call (short: it runs after the answer)."""
    return [
        Message("system", PROMPT),
        Message("user", f"Question: {question}\nAnswer: {answer.strip()}"),
    ]


def parse(text: str, *, question: str = "", limit: int = 3) -> tuple[str, ...]:
    """Up to `limit` distinct questions found in the model's `text`."""
    if limit <= 0:
        return ()
    seen = {_key(question)} if question else set()
    found: list[str] = []
    for line in text.splitlines():
        line = _BULLET.sub("", _QUOTES.sub("", line).strip())
        for candidate in _SENTENCE_END.split(line):
            candidate = _LABEL.sub("", _BULLET.sub("", candidate.strip()))
            candidate = candidate.strip(" \t'`*_‘’").strip()
            if not _usable(candidate):
                continue
            key = _key(candidate)
            if key in seen:
                continue
            seen.add(key)
            found.append(candidate)
            if len(found) == limit:
                return tuple(found)
    return tuple(found)


def _usable(candidate: str) -> bool:
    return (
        candidate.endswith("?")
        and len(candidate) <= MAX_CHARS
        and len(words(candidate)) >= MIN_WORDS
        and candidate[0].isalnum()
    )


def _key(question: str) -> str:
    return " ".join(words(question))
