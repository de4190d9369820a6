"""A real small LangGraph graph for the adapter's tests: retrieve → answer."""

from __future__ import annotations

from typing import Any, TypedDict

from langchain_core.documents import Document
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from ssechat import status
from ssechat.adapters.langgraph import chat_model, graph_pipeline


class State(TypedDict, total=False):
    question: str
    messages: list[BaseMessage]
    sources: list[Document]
    answer: str


async def retrieve(state: State) -> dict[str, Any]:
    get_stream_writer()(status("retrieving", "searching the notes"))
    return {
        "sources": [
            Document(
                "Runs survive dropped connections.",
                metadata={"title": "Runs", "source": "docs/runs.md", "score": 0.9},
            )
        ]
    }


async def answer(state: State, config: RunnableConfig) -> dict[str, Any]:
    reply = await chat_model(config).ainvoke(state["messages"])
    return {"answer": reply.text}


builder = StateGraph(State)
builder.add_node("retrieve", retrieve)
builder.add_node("answer", answer)
builder.add_edge(START, "retrieve")
builder.add_edge("retrieve", "answer")
builder.add_edge("answer", END)

research = graph_pipeline(builder.compile())
