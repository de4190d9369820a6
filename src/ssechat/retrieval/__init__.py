"""Retrieval for the `rag` pipeline: documents in, relevant passages out.

`loaders` (bytes → text) → `chunking` (text → passages) → `documents` (store them per user,
with `embeddings` when configured) → `search` (BM25 by the database's full-text index, dense
fused by reciprocal rank, a relevance gate) → `grounding` and `followups` (what the pipeline
makes of the model's answer). `terms` is the notion of a word they share. docs/rag.md tells
the whole story.
"""
