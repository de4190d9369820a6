"""The TypeScript client's own tests (clients/js: `npm test`) as part of every pytest run.

They type-check the package, the page and the tests (tsc, strict), then run node's test
runner against real `ssechat serve` processes they start themselves: streaming, typed
handlers, abort, timeout, non-2xx errors, resume after a cut connection, the session store
and the React hook, the page's Markdown sanitising, and whether the committed page bundle
(src/ssechat/web/app.js) is what the sources build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "js"


def test_the_javascript_client_passes_its_own_tests_against_a_real_server() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed (the JS client's tests run on Node)")
    if not (CLIENT / "node_modules").is_dir():
        pytest.skip("clients/js/node_modules is missing: run `npm ci --prefix clients/js`")
    # The servers the tests start run on this interpreter, where ssechat is installed.
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        [npm, "test", "--prefix", str(CLIENT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = (done.stdout + done.stderr)[-20_000:]
    assert done.returncode == 0, report
    assert "# fail 0" in done.stdout, report
