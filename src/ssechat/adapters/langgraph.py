"""LangGraph: a compiled graph as an ssechat pipeline (`pip install "ssechat[langgraph]"`).

    from ssechat import register_pipeline
    from ssechat.adapters.langgraph import chat_model, graph_pipeline

    async def answer(state, config):                 # a node of your graph
        reply = await chat_model(config).ainvoke(state["messages"])
        return {"messages": [reply]}

    register_pipeline("research", graph_pipeline(graph))

The graph runs with `astream(stream_mode=["tasks", "messages", "updates", "custom"])`:

| LangGraph                                | ssechat event                            |
| ---------------------------------------- | ---------------------------------------- |
| a node starting (`tasks`)                | `status` with the node's name            |
| a chat model's tokens (`messages`)       | `delta`                                  |
| a node's update with a `sources` key     | `sources` (dicts, Sources, or Documents) |
| `get_stream_writer()(text)` in a node    | `delta`                                  |
| `get_stream_writer()(event)` in a node   | that canonical event                     |

The graph's input is `{"messages": [...history, question], "question": str}` unless
`inputs=` builds another. Inside a node, `chat_model(config)` is the run's model — ssechat's
configured backend as a LangChain chat model — so its tokens stream as deltas and its usage
is counted. A stop cancels the graph: its running node is cancelled where it awaits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict

from ssechat.events import Event, Source, Sources, Status, sources
from ssechat.models import GenerationParams, Message, ModelBackend, Role
from ssechat.pipelines import Context, Pipeline

CONTEXT_KEY = "ssechat_context"
_ROLES: Mapping[str, Role] = {
    "system": "system",
    "human": "user",
    "ai": "assistant",
    "tool": "tool",
}


class SsechatChatModel(BaseChatModel):
    """ssechat's model backend as a LangChain chat model (streaming, async)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any  # a ModelBackend (a Protocol: pydantic cannot validate it)
    params: GenerationParams = GenerationParams()

    @property
    def _llm_type(self) -> str:
        return f"ssechat-{cast(ModelBackend, self.backend).backend}"

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        params = self.params.model_copy(update={"stop": tuple(stop or ())}) if stop else self.params
        backend = cast(ModelBackend, self.backend)
        async with aclosing(backend.stream([_to_ssechat(m) for m in messages], params)) as deltas:
            async for delta in deltas:
                if delta.text:
                    yield ChatGenerationChunk(message=AIMessageChunk(content=delta.text))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        parts = [chunk.text async for chunk in self._astream(messages, stop, run_manager)]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content="".join(parts)))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # ssechat's backends are async; a synchronous caller gets the same answer from a
        # private event loop (a graph node called with `invoke` from a worker thread).
        return asyncio.run(self._agenerate(messages, stop))


def _to_ssechat(message: BaseMessage) -> Message:
    return Message(_ROLES.get(message.type, "user"), message.text)


def chat_model(config: RunnableConfig) -> SsechatChatModel:
    """Inside a node: the run's model (from the config LangGraph passes to the node)."""
    ctx: Context = config["configurable"][CONTEXT_KEY]
    return SsechatChatModel(backend=ctx.model, params=ctx.params)


def default_inputs(ctx: Context) -> dict[str, Any]:
    system = [SystemMessage(ctx.system_prompt)] if ctx.system_prompt else []
    history = [
        AIMessage(m.content) if m.role == "assistant" else HumanMessage(m.content)
        for m in ctx.history
    ]
    return {"messages": [*system, *history, HumanMessage(ctx.question)], "question": ctx.question}


def graph_pipeline(
    graph: Any,
    *,
    inputs: Callable[[Context], Any] = default_inputs,
    sources_key: str = "sources",
) -> Pipeline:
    """Wrap a compiled LangGraph graph (anything with LangGraph's `astream`) as a pipeline."""

    async def pipeline(ctx: Context) -> AsyncGenerator[Event | str, None]:
        config: RunnableConfig = {"configurable": {CONTEXT_KEY: ctx}}
        modes = ["tasks", "messages", "updates", "custom"]
        async with aclosing(graph.astream(inputs(ctx), config, stream_mode=modes)) as stream:
            async for mode, chunk in stream:
                for event in _translate(mode, chunk, sources_key):
                    yield event

    return pipeline


def _translate(mode: str, chunk: Any, sources_key: str) -> list[Event | str]:
    if mode == "tasks" and "input" in chunk:  # a task starting (its result has "result")
        return [Status(str(chunk["name"]))]
    if mode == "messages":
        message, _meta = chunk
        if isinstance(message, AIMessageChunk) and message.text:
            return [message.text]
        return []
    if mode == "updates":
        found: list[Event | str] = []
        for update in chunk.values():
            if isinstance(update, Mapping) and update.get(sources_key):
                found.append(_sources(update[sources_key]))
        return found
    if mode == "custom" and isinstance(chunk, str | Event):
        return [chunk]
    return []


def _sources(items: Sequence[Any]) -> Sources:
    converted: list[Source | Mapping[str, Any]] = []
    for i, item in enumerate(items, start=1):
        if isinstance(item, Source | Mapping):
            converted.append(item)
        else:  # a LangChain Document
            meta = dict(getattr(item, "metadata", {}) or {})
            converted.append(
                {
                    "id": meta.pop("id", None) or getattr(item, "id", None) or str(i),
                    "title": meta.pop("title", None) or meta.get("source", ""),
                    "text": getattr(item, "page_content", str(item)),
                    "score": meta.pop("score", 0.0),
                    "uri": meta.pop("uri", None) or meta.get("source"),
                    "metadata": meta,
                }
            )
    return sources(*converted)
