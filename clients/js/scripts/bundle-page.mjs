// Bundle the chat page (page/main.ts with the client, markdown-it and DOMPurify) into
// src/ssechat/web/app.js, the file `ssechat serve` ships, so the page needs no Node at run time.
//
//   node scripts/bundle-page.mjs           write the bundle
//   node scripts/bundle-page.mjs --check   exit 1 if the committed bundle differs from a fresh one
//
// esbuild is pinned to an exact version in package.json: the same sources give the same bytes.

import { readFile, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { build } from "esbuild";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outfile = join(root, "..", "..", "src", "ssechat", "web", "app.js");

const result = await build({
  entryPoints: [join(root, "page", "main.ts")],
  bundle: true,
  format: "esm",
  target: ["es2022", "chrome111", "firefox111", "safari16.4"],
  minify: true,
  legalComments: "eof",
  charset: "utf8",
  banner: {
    js: "// ssechat chat page: built from clients/js/page by `npm run build`. Do not edit.",
  },
  write: false,
  logLevel: "warning",
});
const fresh = result.outputFiles[0].contents;

if (process.argv.includes("--check")) {
  const committed = await readFile(outfile).catch(() => Buffer.alloc(0));
  if (!Buffer.from(fresh).equals(committed)) {
    console.error(
      `${relative(process.cwd(), outfile)} is stale: run \`npm run build\` in clients/js`,
    );
    process.exit(1);
  }
  console.log(`${relative(process.cwd(), outfile)} is up to date (${fresh.length} bytes)`);
} else {
  await writeFile(outfile, fresh);
  console.log(`wrote ${relative(process.cwd(), outfile)} (${fresh.length} bytes)`);
}
