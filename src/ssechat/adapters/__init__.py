"""Adapters that turn other frameworks' agents into ssechat pipelines (optional extras)."""
