"""Plugins: pipelines and model backends from installed packages, or named on the command line.

Entry point groups (in a plugin's pyproject.toml):

    [project.entry-points."ssechat.pipelines"]
    shout = "my_package.pipelines:shout"        # an async generator function (ctx) -> events

    [project.entry-points."ssechat.models"]
    mymodel = "my_package.backend:from_settings"  # (Settings) -> ModelBackend

The entry point's name is the pipeline's (or backend's) name. A plugin that fails to import
raises `PluginError` naming it, which stops start-up: a server silently missing a pipeline
that clients rely on is worse than one that does not start.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ssechat.models import backend_names, register_backend
from ssechat.pipelines import pipeline_names, register_pipeline

PIPELINE_GROUP = "ssechat.pipelines"
MODEL_GROUP = "ssechat.models"


class PluginError(Exception):
    """A plugin could not be loaded; the message names it."""


@dataclass(frozen=True, slots=True)
class Plugin:
    group: str
    name: str
    value: str  # "module:attribute"
    distribution: str


def discover() -> list[Plugin]:
    """Every ssechat plugin declared by an installed distribution."""
    found = []
    for group in (PIPELINE_GROUP, MODEL_GROUP):
        for ep in entry_points(group=group):
            dist = ep.dist.name if ep.dist is not None else "?"
            found.append(Plugin(group, ep.name, ep.value, dist))
    return sorted(found, key=lambda p: (p.group, p.name))


def load(plugin: Plugin) -> None:
    """Import `plugin` and register it under its name."""
    target = _import(plugin.value, f"plugin {plugin.name!r} from {plugin.distribution}")
    if plugin.group == PIPELINE_GROUP:
        register_pipeline(plugin.name, target)
    else:
        register_backend(plugin.name)(target)


def load_plugins(specs: Iterable[str] = ()) -> None:
    """Load every installed plugin, then each `[name=]module:function` spec (`--pipeline`).

    The built-ins are registered first, so a plugin of the same name replaces one on purpose
    instead of being replaced by it when the built-ins load lazily."""
    pipeline_names()
    backend_names()
    for plugin in discover():
        load(plugin)
    for spec in specs:
        name, _, value = spec.rpartition("=")
        target = _import(value, f"pipeline {spec!r}")
        register_pipeline(name or value.rpartition(":")[2], target)


def _import(value: str, what: str) -> Any:
    module_name, _, attribute = value.partition(":")
    if not module_name or not attribute:
        raise PluginError(f"{what}: expected module:function, got {value!r}")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        raise PluginError(f"{what} failed to load: {type(exc).__name__}: {exc}") from exc
    if not callable(target):
        raise PluginError(f"{what}: {value} is not callable")
    return target
