/**
 * Model output as safe Markdown. Two walls, either of which alone keeps markup out:
 *
 * 1. markdown-it with `html: false`: any HTML in the text is escaped, so `<img onerror>` or
 *    `<script>` arrive as text; its link validation drops `javascript:`, `vbscript:`,
 *    `file:` and `data:` URLs. Images are turned off: a remote image in model output is a
 *    channel out of the page (a prompt-injected answer could put data in its URL).
 * 2. DOMPurify over markdown-it's output, returning DOM nodes (never an HTML string that
 *    someone could later assign to `innerHTML`), with only web and mail links allowed and
 *    no `style` attributes (the page's CSP forbids inline style anyway).
 *
 * Citations such as `[1]` in the text become links to the answer's sources, built as DOM
 * nodes after sanitising, so they cannot be forged into anything else.
 */

import createDOMPurify from "dompurify";
import MarkdownIt from "markdown-it";

export interface Markdown {
  /**
   * Render `text`; `cite(n)` gives the link target for citation `[n]` (null: leave it as
   * text).
   */
  render(text: string, cite?: (n: number) => string | null): DocumentFragment;
}

const CITATION = /\[(\d{1,3})\]/g;
const HAS_CITATION = /\[\d{1,3}\]/; // not global: `test` must not move a `lastIndex`
const NO_CITATIONS_IN = new Set(["A", "CODE", "PRE"]);

export function createMarkdown(win: Window & typeof globalThis): Markdown {
  const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
  md.disable(["image"]);
  const purify = createDOMPurify(win);
  const config = {
    RETURN_DOM_FRAGMENT: true as const,
    FORBID_TAGS: ["style", "img", "form", "input", "button", "textarea", "select", "iframe"],
    FORBID_ATTR: ["style", "class", "id"],
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  };
  return {
    render(text, cite) {
      const fragment = purify.sanitize(md.render(text), config);
      for (const link of fragment.querySelectorAll("a")) {
        link.target = "_blank";
        link.rel = "noopener noreferrer nofollow";
      }
      if (cite) linkCitations(win.document, fragment, cite);
      return fragment;
    },
  };
}

function linkCitations(
  doc: Document,
  root: DocumentFragment,
  cite: (n: number) => string | null,
): void {
  const walker = doc.createTreeWalker(root, 4 /* NodeFilter.SHOW_TEXT */);
  const texts: Text[] = [];
  for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
    if (!insideAny(node, root)) texts.push(node as Text);
  }
  for (const node of texts) {
    const value = node.data;
    if (!HAS_CITATION.test(value)) continue;
    const parts = doc.createDocumentFragment();
    let last = 0;
    for (const match of value.matchAll(CITATION)) {
      const target = cite(Number(match[1]));
      if (target === null) continue;
      parts.append(value.slice(last, match.index));
      const link = doc.createElement("a");
      link.className = "citation";
      link.href = target;
      link.textContent = match[0];
      link.setAttribute("aria-label", `Source ${match[1]}`);
      parts.append(link);
      last = match.index + match[0].length;
    }
    if (last === 0) continue;
    parts.append(value.slice(last));
    node.replaceWith(parts);
  }
}

function insideAny(node: Node, root: Node): boolean {
  for (
    let parent = node.parentNode;
    parent !== null && parent !== root;
    parent = parent.parentNode
  ) {
    if (NO_CITATIONS_IN.has(parent.nodeName)) return true;
  }
  return false;
}
