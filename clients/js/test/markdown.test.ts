// The page's Markdown renderer (page/markdown.ts) on a jsdom document: model output can
// never become markup.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { JSDOM } from "jsdom";

import { createMarkdown } from "../page/markdown.js";

const dom = new JSDOM("<!doctype html><body></body>");
const markdown = createMarkdown(dom.window as unknown as Window & typeof globalThis);

function html(text: string, cite?: (n: number) => string | null): HTMLElement {
  const box = dom.window.document.createElement("div");
  box.append(markdown.render(text, cite));
  return box as unknown as HTMLElement;
}

describe("the page's Markdown", () => {
  test("renders Markdown: emphasis, lists, code and https links", () => {
    const box = html("**bold** and `code`\n\n- one\n- two\n\n[docs](https://example.org/a)");
    assert.equal(box.querySelector("strong")?.textContent, "bold");
    assert.equal(box.querySelector("code")?.textContent, "code");
    assert.equal(box.querySelectorAll("li").length, 2);
    const link = box.querySelector("a");
    assert.equal(link?.getAttribute("href"), "https://example.org/a");
    assert.equal(link?.getAttribute("rel"), "noopener noreferrer nofollow");
    assert.equal(link?.getAttribute("target"), "_blank");
  });

  test("shows raw HTML from the model as text: no img, no script, no handlers", () => {
    const text =
      "An image: <img src=x onerror=alert(1)> a script: <script>alert(2)</script> " +
      '<a href="javascript:alert(4)" onclick="alert(5)">x</a> <iframe src="https://e.org"></iframe>';
    const box = html(text);
    for (const tag of ["img", "script", "iframe"]) {
      assert.equal(box.querySelector(tag), null, `a <${tag}> element was created`);
    }
    // The one link is linkify's, of the bare https URL inside the iframe tag's text.
    const links = [...box.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    assert.deepEqual(links, ["https://e.org"]);
    assert.ok(box.textContent?.includes("<img src=x onerror=alert(1)>"), box.textContent ?? "");
    assert.ok(box.textContent?.includes("<script>alert(2)</script>"));
    assert.equal(box.querySelectorAll("[onerror], [onclick]").length, 0);
  });

  test("drops script and data links and renders no images", () => {
    const box = html(
      "[a](javascript:alert(1)) [b](JAVASCRIPT:alert(1)) [c](data:text/html;base64,PHNjcmlwdD4=) " +
        "[d](vbscript:x) ![pixel](https://tracker.example/p.png?secret=1)",
    );
    assert.equal(box.querySelector("img"), null);
    for (const link of box.querySelectorAll("a")) {
      assert.match(link.getAttribute("href") ?? "", /^https:/, link.outerHTML);
    }
    assert.equal(
      box.querySelectorAll('a[href^="javascript" i], a[href^="data" i], a[href^="vbscript" i]')
        .length,
      0,
    );
  });

  test("links citations to their sources, except inside code and links", () => {
    const cite = (n: number): string | null => (n <= 2 ? `#source-${n}` : null);
    const box = html("Paris [1] is big [2][3]. `arr[1]` and [x](https://e.org/[1])", cite);
    const citations = [...box.querySelectorAll("a.citation")].map((a) => [
      a.textContent,
      a.getAttribute("href"),
    ]);
    assert.deepEqual(citations, [
      ["[1]", "#source-1"],
      ["[2]", "#source-2"],
    ]);
    assert.ok(box.textContent?.includes("[3]"));
    assert.equal(box.querySelector("code")?.textContent, "arr[1]");
  });

  test("a citation cannot smuggle markup through its target", () => {
    const box = html("see [1]", () => '"><img src=x onerror=alert(1)>');
    assert.equal(box.querySelector("img"), null);
    assert.equal(
      box.querySelector("a.citation")?.getAttribute("href"),
      '"><img src=x onerror=alert(1)>',
    );
  });
});
