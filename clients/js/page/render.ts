/**
 * One chat message as an `<article>`, updated part by part: `ChatSession` keeps the
 * references of what did not change, so while an answer streams only its text is rebuilt
 * and a focused source link or table keeps its focus.
 */

import type { ChatMessage } from "../src/index.js";
import { domId, formatBytes, h, safeUrl } from "./dom.js";
import type { Markdown } from "./markdown.js";

export interface Actions {
  ask(question: string): void;
  retry(): void;
  resume(): void;
  download(url: string, event: MouseEvent): void;
}

export interface RenderContext {
  markdown: Markdown;
  actions: Actions;
}

type Part = "content" | "sources" | "sql" | "table" | "csv" | "followups" | "footer";
const PARTS: readonly Part[] = ["content", "sources", "sql", "table", "csv", "followups", "footer"];

export class MessageView {
  readonly el: HTMLElement;
  private readonly slots = new Map<Part, { el: HTMLElement; key: unknown }>();

  constructor(message: ChatMessage) {
    const you = message.role === "user";
    this.el = h(
      "article",
      { class: `message message-${message.role}`, "aria-label": you ? "You" : "Answer" },
      h("h3", { class: "message-role" }, you ? "You" : "Answer"),
    );
    for (const part of PARTS) {
      const slot = h("div", { class: `part part-${part}` });
      this.slots.set(part, { el: slot, key: Symbol("unset") });
      this.el.append(slot);
    }
  }

  update(message: ChatMessage, isLast: boolean, ctx: RenderContext): void {
    const streaming = message.status === "streaming";
    this.el.dataset["status"] = message.status;
    this.el.setAttribute("aria-busy", String(streaming));
    this.set("content", [message.content, message.sources, message.status], () =>
      content(message, ctx),
    );
    this.set("sources", message.sources, () => sources(message));
    this.set("sql", message.sql, () => sql(message));
    this.set("table", message.table, () => table(message));
    this.set("csv", message.csv, () => csv(message, ctx));
    this.set("followups", [message.followups, isLast, streaming], () =>
      followups(message, isLast && !streaming, ctx),
    );
    this.set("footer", [message.status, message.error, message.metadata, isLast], () =>
      footer(message, isLast, ctx),
    );
  }

  private set(part: Part, key: unknown, build: () => Node | null): void {
    const slot = this.slots.get(part);
    if (slot === undefined || sameKey(slot.key, key)) return;
    slot.key = key;
    const node = build();
    slot.el.replaceChildren(...(node === null ? [] : [node]));
    slot.el.hidden = node === null;
  }
}

function sameKey(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
  }
  return Object.is(a, b);
}

function content(message: ChatMessage, ctx: RenderContext): Node | null {
  if (message.role === "user") return h("p", { class: "user-text" }, message.content);
  if (message.content === "") {
    return message.status === "streaming"
      ? h(
          "p",
          { class: "typing", "aria-label": "Waiting for the answer" },
          h("span"),
          h("span"),
          h("span"),
        )
      : null;
  }
  const body = h("div", { class: "markdown" });
  body.append(
    ctx.markdown.render(message.content, (n) => {
      const index = citedIndex(message, n);
      return index === null ? null : `#${sourceId(message, index)}`;
    }),
  );
  return body;
}

/** The position in `message.sources` of citation `[n]`: the source whose id is `n`, else the
 * n-th. */
export function citedIndex(message: ChatMessage, n: number): number | null {
  const byId = message.sources.findIndex((s) => s.id === String(n));
  if (byId >= 0) return byId;
  return n >= 1 && n <= message.sources.length ? n - 1 : null;
}

export function sourceId(message: ChatMessage, index: number): string {
  return `source-${domId(message.id)}-${index + 1}`;
}

function sources(message: ChatMessage): Node | null {
  if (message.sources.length === 0) return null;
  const headingId = `sources-${domId(message.id)}`;
  return h(
    "section",
    { class: "sources", "aria-labelledby": headingId },
    h("h4", { id: headingId }, "Sources"),
    h(
      "ol",
      {},
      ...message.sources.map((source, i) => {
        const url = safeUrl(source.uri, true);
        const title = source.title || source.uri || `Source ${source.id}`;
        return h(
          "li",
          { id: sourceId(message, i), tabindex: -1 },
          url === null
            ? h("span", { class: "source-title" }, title)
            : h(
                "a",
                { class: "source-title", href: url, target: "_blank", rel: "noopener noreferrer" },
                title,
              ),
          source.score
            ? h("span", { class: "score", title: "relevance" }, source.score.toFixed(2))
            : null,
          source.text ? h("p", { class: "snippet" }, source.text) : null,
        );
      }),
    ),
  );
}

function sql(message: ChatMessage): Node | null {
  if (message.sql === null) return null;
  return h(
    "details",
    { class: "sql", open: true },
    h("summary", {}, message.sql.dialect ? `SQL (${message.sql.dialect})` : "SQL"),
    h("pre", {}, h("code", {}, message.sql.sql)),
  );
}

function table(message: ChatMessage): Node | null {
  const t = message.table;
  if (t === null) return null;
  const shown = t.rows.length;
  // Columns whose every value is a number are right-aligned, as figures are.
  const numeric = t.columns.map(
    (_, i) => shown > 0 && t.rows.every((row) => row[i] === null || typeof row[i] === "number"),
  );
  const caption =
    t.truncated || t.row_count > shown
      ? `Showing ${shown} of ${t.row_count} rows`
      : `${t.row_count} row${t.row_count === 1 ? "" : "s"}`;
  return h(
    "div",
    { class: "table-wrap", role: "region", "aria-label": "Result preview", tabindex: 0 },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...t.columns.map((c, i) =>
            h("th", { scope: "col", class: numeric[i] ? "num" : null }, c),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        ...t.rows.map((row) =>
          h("tr", {}, ...row.map((v, i) => h("td", { class: numeric[i] ? "num" : null }, cell(v)))),
        ),
      ),
    ),
  );
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function csv(message: ChatMessage, ctx: RenderContext): Node | null {
  const file = message.csv;
  const url = safeUrl(file?.url);
  if (file === null || url === null) return null;
  const details = [
    file.rows === null ? null : `${file.rows} rows`,
    file.bytes === null ? null : formatBytes(file.bytes),
  ].filter((d) => d !== null);
  const link = h("a", { class: "button-link", href: url, download: "" }, "Download CSV");
  link.addEventListener("click", (event) => ctx.actions.download(url, event));
  return h("p", { class: "csv" }, link, details.length ? ` ${details.join(", ")}` : null);
}

function followups(message: ChatMessage, enabled: boolean, ctx: RenderContext): Node | null {
  if (message.followups.length === 0 || !enabled) return null;
  return h(
    "div",
    { class: "followups" },
    h("h4", {}, "Ask next"),
    h(
      "ul",
      {},
      ...message.followups.map((question) => {
        const button = h("button", { type: "button", class: "chip" }, question);
        button.addEventListener("click", () => ctx.actions.ask(question));
        return h("li", {}, button);
      }),
    ),
  );
}

function footer(message: ChatMessage, isLast: boolean, ctx: RenderContext): Node | null {
  if (message.role === "user") return null;
  const items: Node[] = [];
  if (message.status === "cancelled")
    items.push(h("p", { class: "note" }, "Stopped. The answer so far is saved."));
  if (message.status === "interrupted")
    items.push(h("p", { class: "note" }, "Interrupted: the server stopped this answer."));
  if (message.error !== null && message.status !== "cancelled") {
    items.push(h("p", { class: "error-text" }, `${message.error.message} (${message.error.code})`));
  }
  if (isLast && message.status !== "streaming" && message.status !== "complete") {
    const actions = h("div", { class: "actions" });
    if (message.error?.code === "connection_lost" && message.runId !== null) {
      const resume = h("button", { type: "button" }, "Resume");
      resume.addEventListener("click", () => ctx.actions.resume());
      actions.append(resume);
    }
    const retry = h("button", { type: "button" }, "Ask again");
    retry.addEventListener("click", () => ctx.actions.retry());
    actions.append(retry);
    items.push(actions);
  }
  const meta = message.metadata;
  if (meta !== null && message.status === "complete") {
    const bits = [meta.model];
    if (meta.usage)
      bits.push(`${meta.usage.prompt_tokens} → ${meta.usage.completion_tokens} tokens`);
    if (meta.timings?.ttft_ms != null)
      bits.push(`first token ${Math.round(meta.timings.ttft_ms)} ms`);
    if (meta.timings?.total_ms != null) bits.push(`${(meta.timings.total_ms / 1000).toFixed(1)} s`);
    for (const [name, value] of Object.entries(meta.quality ?? {})) {
      if (typeof value === "number") bits.push(`${name} ${value.toFixed(2)}`);
    }
    items.push(h("p", { class: "meta" }, bits.filter(Boolean).join(" · ")));
  }
  return items.length === 0 ? null : h("div", { class: "footer" }, ...items);
}
