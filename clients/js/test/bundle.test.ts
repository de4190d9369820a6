// The page that `pip install` ships (src/ssechat/web/app.js) must be what the sources build.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";

import { REPO } from "./helpers.js";

test("the committed page bundle matches a fresh build of the sources", () => {
  const script = join(REPO, "clients", "js", "scripts", "bundle-page.mjs");
  const run = spawnSync(process.execPath, [script, "--check"], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
});
