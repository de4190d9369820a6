"""Identifiers: a readable prefix and 128 random bits (`run_…`, `msg_…`, `conv_…`)."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"
