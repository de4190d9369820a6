"""The API a pipeline author uses: `from ssechat import …`, the event helpers, registration."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncGenerator

import pytest

import ssechat
from ssechat import events
from ssechat.pipelines import Context, get_pipeline
from ssechat.plugins import PluginError, load_plugins


def test_every_public_name_resolves() -> None:
    for name in ssechat.__all__:
        assert getattr(ssechat, name) is not None
    with pytest.raises(AttributeError):
        ssechat.nonexistent  # noqa: B018


def test_importing_the_client_does_not_load_the_server_stack() -> None:
    code = (
        "import sys, ssechat.client;"
        "print(sorted(m for m in ('fastapi', 'sqlalchemy', 'llama_cpp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_helpers_build_canonical_events_from_plain_values() -> None:
    assert ssechat.status("retrieving") == events.Status("retrieving")
    assert ssechat.delta("hi") == events.Delta("hi")
    assert ssechat.sql("SELECT 1") == events.Sql("SELECT 1", "sqlite")
    assert ssechat.followups("a?", "b?") == events.Followups(("a?", "b?"))
    assert ssechat.csv("/v1/files/x", 3, 40) == events.Csv("/v1/files/x", 3, 40)
    table = ssechat.table(["n"], [[1], [2]], row_count=10, truncated=True)
    assert table == events.Table(("n",), ((1,), (2,)), 10, True)
    assert ssechat.table(["n"], [[1]]).row_count == 1
    assert ssechat.metadata(grounding=0.5).quality == {"grounding": 0.5}


def test_sources_accept_dicts_and_keep_unknown_keys_as_metadata() -> None:
    made = ssechat.sources(
        {"id": 7, "title": "Guide", "text": "…", "score": "0.5", "page": 3},
        events.Source("s2", "Other", "text", 0.1),
    )
    first, second = made.sources
    assert first == events.Source("7", "Guide", "…", 0.5, None, {"page": 3})
    assert second.id == "s2"
    assert events.loads("sources", events.dumps(made)) == made


async def _upper(ctx: Context) -> AsyncGenerator[events.Event | str, None]:
    yield ctx.question.upper()


def test_a_pipeline_registers_by_decorator_or_by_call() -> None:
    decorated = ssechat.register_pipeline("test-decorated")(_upper)
    called = ssechat.register_pipeline("test-called", _upper)
    assert decorated is called is _upper
    assert get_pipeline("test-decorated") is get_pipeline("test-called") is _upper


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nocolon", "expected module:function"),
        ("ssechat.nope_module:fn", "failed to load: ModuleNotFoundError"),
        ("ssechat.events:nonexistent", "failed to load: AttributeError"),
        ("ssechat:__version__", "is not callable"),
    ],
)
def test_a_bad_pipeline_spec_is_a_plugin_error_naming_it(spec: str, message: str) -> None:
    with pytest.raises(PluginError, match=message) as caught:
        load_plugins([spec])
    assert spec in str(caught.value)


def test_a_spec_registers_under_its_function_name_or_the_given_name() -> None:
    load_plugins(["tests.unit.test_public_api:_upper", "loud=tests.unit.test_public_api:_upper"])
    assert get_pipeline("_upper") is get_pipeline("loud")
