"""The `rag` pipeline: the user's documents → sources → an answer citing them → follow-ups →
a grounding score.

    status retrieving → sources → status generating → deltas → followups → metadata.quality

- Retrieval (`retrieval/search.py`): BM25 over the user's chunks (plus dense retrieval fused
  by reciprocal rank when an embedding model is configured), keeping the `rag_top_k` best
  that are relevant at all (`rag_min_coverage`, `rag_min_similarity`).
- No relevant chunk: `sources` is empty and the answer says so, without asking the model,
  which would answer from what it half-remembers: nothing is invented.
- The prompt numbers the sources and asks for [n] citations. The conversation's history is
  not sent: each question is answered from the documents alone, and the sources fill the
  small context of the embedded model.
- Follow-ups: a second, short model call after the answer (`retrieval/followups.py`); none
  when the model writes none, or when it fails (the answer stands).
- Quality: `retrieval/grounding.py` scores the answer against the sources it was given.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from ssechat.config import DEFAULT_RAG_SYSTEM_PROMPT
from ssechat.errors import ModelError, PipelineError
from ssechat.events import Event, Followups, Metadata, Source, Sources, Status
from ssechat.models import GenerationParams, Message, ModelBackend
from ssechat.pipelines import Context, register_pipeline
from ssechat.retrieval import followups
from ssechat.retrieval.embeddings import embedder_for
from ssechat.retrieval.grounding import grounding
from ssechat.retrieval.search import Hit, search

logger = logging.getLogger("ssechat.rag")

NO_SOURCES_ANSWER = (
    "I could not find anything about that in your documents, so I cannot answer it from them."
)
FOLLOWUP_MAX_TOKENS = 80


@register_pipeline("rag")
async def rag(ctx: Context) -> AsyncGenerator[Event | str, None]:
    svc = ctx.services
    if svc is None:
        raise PipelineError("the rag pipeline needs the app's services (its document store)")
    settings = svc.settings
    yield Status("retrieving")
    hits = await search(
        svc.store,
        ctx.user,
        ctx.question,
        top_k=settings.rag_top_k,
        embedder=embedder_for(svc),
        min_coverage=settings.rag_min_coverage,
        min_similarity=settings.rag_min_similarity,
    )
    sources = tuple(source(n, hit) for n, hit in enumerate(hits, start=1))
    yield Sources(sources)
    if not sources:
        yield NO_SOURCES_ANSWER
        quality = grounding(NO_SOURCES_ANSWER, [], threshold=settings.rag_grounding_threshold)
        yield Metadata(model=ctx.model.model, quality=quality.as_quality())
        return

    yield Status("generating")
    answer: list[str] = []
    system = ctx.system_prompt or DEFAULT_RAG_SYSTEM_PROMPT
    messages = [Message("system", system), Message("user", prompt(ctx.question, sources))]
    async with aclosing(ctx.model.stream(messages, ctx.params)) as deltas:
        async for delta in deltas:
            if delta.text:
                answer.append(delta.text)
                yield delta.text
    text = "".join(answer)

    if settings.rag_followups and text.strip():
        questions = await ask_followups(
            ctx.model, ctx.params, ctx.question, text, settings.rag_followups
        )
        if questions:
            yield Followups(questions)

    quality = grounding(
        text,
        [s.text for s in sources],
        question=ctx.question,
        threshold=settings.rag_grounding_threshold,
    )
    yield Metadata(model=ctx.model.model, quality=quality.as_quality())


def source(n: int, hit: Hit) -> Source:
    """Hit number `n` as the source the prompt calls [n]."""
    if hit.heading.startswith(hit.title):
        title = hit.heading
    else:
        title = " › ".join(part for part in (hit.title, hit.heading) if part)
    return Source(
        id=f"{hit.document_id}:{hit.ordinal}",
        title=title,
        text=hit.text,
        score=round(hit.score, 6),
        uri=hit.uri,
        metadata={
            "n": n,
            "document_id": hit.document_id,
            "chunk": hit.ordinal,
            "coverage": round(hit.coverage, 4),
            "bm25": None if hit.bm25 is None else round(hit.bm25, 6),
            "similarity": None if hit.similarity is None else round(hit.similarity, 6),
        },
    )


def prompt(question: str, sources: Sequence[Source]) -> str:
    numbered = "\n\n".join(f"[{n}] {s.title}\n{s.text}" for n, s in enumerate(sources, 1))
    return f"Sources:\n\n{numbered}\n\nQuestion: {question}"


async def ask_followups(
    model: ModelBackend, params: GenerationParams, question: str, answer: str, limit: int
) -> tuple[str, ...]:
    """The model's follow-up questions, parsed; () when it writes none or fails."""
    short = params.model_copy(update={"max_tokens": FOLLOWUP_MAX_TOKENS})
    pieces: list[str] = []
    try:
        async with aclosing(model.stream(followups.messages(question, answer), short)) as deltas:
            async for delta in deltas:
                pieces.append(delta.text)
    except ModelError as exc:  # the answer is complete and saved: it does not fail with this
        logger.warning("follow-up questions failed: %s", exc)
        return ()
    return followups.parse("".join(pieces), question=question, limit=limit)
