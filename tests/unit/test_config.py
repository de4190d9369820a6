"""Settings come from flags, then `SSECHAT_*` environment variables, then `.env`."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ssechat.cli import _settings
from ssechat.config import (
    DEFAULT_CHAT_SYSTEM_PROMPT,
    DEFAULT_RAG_SYSTEM_PROMPT,
    DEFAULT_SQL_SYSTEM_PROMPT,
    Settings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SSECHAT_PORT", "SSECHAT_KEEPALIVE_INTERVAL", "SSECHAT_SYSTEM_PROMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_serve_the_embedded_model_on_loopback() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.model_backend) == ("127.0.0.1", 8000, "llamacpp")
    assert settings.keepalive_interval == 15
    assert settings.system_prompts["chat"] == DEFAULT_CHAT_SYSTEM_PROMPT


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SSECHAT_KEEPALIVE_INTERVAL=3\nSSECHAT_PORT=9100\n")
    assert (Settings().keepalive_interval, Settings().port) == (3, 9100)


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("SSECHAT_PORT=9100\n")
    monkeypatch.setenv("SSECHAT_PORT", "9200")
    assert Settings().port == 9200


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSECHAT_PORT", "9200")
    monkeypatch.setenv("SSECHAT_KEEPALIVE_INTERVAL", "4")
    args = argparse.Namespace(port=9300, keepalive_interval=None)
    settings = _settings(args, ("port", "keepalive_interval"))
    assert settings.port == 9300  # the flag
    assert settings.keepalive_interval == 4  # not given as a flag: the environment's


def test_a_partial_prompt_mapping_keeps_the_other_pipelines_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSECHAT_SYSTEM_PROMPTS", '{"chat": "Be brief."}')
    prompts = Settings().system_prompts
    assert prompts["chat"] == "Be brief."
    assert prompts["rag"] == DEFAULT_RAG_SYSTEM_PROMPT
    assert prompts["sql"] == DEFAULT_SQL_SYSTEM_PROMPT
    assert Settings(compat_pipelines={"keyed": "shout"}).compat_pipelines["vanna"] == "sql"


def test_an_invalid_value_is_refused_with_the_settings_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSECHAT_KEEPALIVE_INTERVAL", "-1")
    with pytest.raises(ValueError, match="keepalive_interval"):
        Settings()
