/**
 * The chat page served at `/` by `ssechat serve`: a `ChatSession` (the same store the React
 * hook wraps) rendered without a framework. Bundled with the client, markdown-it and
 * DOMPurify into `ssechat/web/app.js` (scripts/bundle-page.mjs), so the page needs no Node
 * and no network beyond its own server.
 *
 * URLs are relative to the page, so it works under a prefix as well as at `/`. The open
 * conversation is in the query string (`?c=ID`), leaving `#…` to in-page links (citations).
 */

import { ChatSession, HttpError, type ChatState } from "../src/index.js";
import { byId, h } from "./dom.js";
import { createMarkdown } from "./markdown.js";
import { MessageView, type RenderContext } from "./render.js";

const KEY_STORAGE = "ssechat.apiKey";
const PIPELINE_STORAGE = "ssechat.pipeline";
const BASE = new URL(".", location.href).href.replace(/\/+$/, "");
const STAGES: Record<string, string> = {
  retrieving: "Searching your documents…",
  generating_sql: "Writing SQL…",
  running_sql: "Running the query…",
  generating: "Writing the answer…",
  thinking: "Thinking…",
};

const el = {
  layout: byId("layout", HTMLDivElement),
  sidebarToggle: byId("sidebar-toggle", HTMLButtonElement),
  sidebar: byId("sidebar", HTMLElement),
  pipeline: byId("pipeline", HTMLSelectElement),
  newChat: byId("new-chat", HTMLButtonElement),
  conversations: byId("conversations", HTMLUListElement),
  conversationsEmpty: byId("conversations-empty", HTMLParagraphElement),
  moreConversations: byId("more-conversations", HTMLButtonElement),
  uploadForm: byId("upload-form", HTMLFormElement),
  uploadFile: byId("upload-file", HTMLInputElement),
  uploadStatus: byId("upload-status", HTMLParagraphElement),
  documents: byId("documents", HTMLUListElement),
  messages: byId("messages", HTMLDivElement),
  empty: byId("empty", HTMLDivElement),
  status: byId("status", HTMLParagraphElement),
  composer: byId("composer", HTMLFormElement),
  prompt: byId("prompt", HTMLTextAreaElement),
  send: byId("send", HTMLButtonElement),
  stop: byId("stop", HTMLButtonElement),
  keyDialog: byId("key-dialog", HTMLDialogElement),
  keyForm: byId("key-form", HTMLFormElement),
  keyInput: byId("key-input", HTMLInputElement),
};

// -- Server access ---------------------------------------------------------------------------

function storage(name: "local" | "session"): Storage | null {
  try {
    return name === "local" ? localStorage : sessionStorage;
  } catch {
    return null; // storage can be disabled; the page works without it
  }
}

function authHeaders(): Headers {
  const headers = new Headers();
  const key = storage("session")?.getItem(KEY_STORAGE);
  if (key) headers.set("authorization", `Bearer ${key}`);
  return headers;
}

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = authHeaders();
  new Headers(init.headers).forEach((value, name) => headers.set(name, value));
  const response = await fetch(`${BASE}/${path}`, { ...init, headers });
  if (!response.ok) {
    const error = await HttpError.from(response);
    if (error.status === 401) askForKey();
    throw error;
  }
  return (response.status === 204 ? null : await response.json()) as T;
}

function askForKey(): void {
  if (!el.keyDialog.open) el.keyDialog.showModal();
}

el.keyDialog.addEventListener("close", () => {
  if (el.keyDialog.returnValue !== "save" || !el.keyInput.value.trim()) return;
  storage("session")?.setItem(KEY_STORAGE, el.keyInput.value.trim());
  el.keyInput.value = "";
  void refreshAll();
});

// -- The conversation ------------------------------------------------------------------------

const session = new ChatSession({
  api: BASE,
  headers: authHeaders,
  retry: { maxAttempts: 8, maxDelayMs: 8000 },
  pipeline: el.pipeline.value,
  onFinish: () => void refreshConversations(),
  onError: (error) => {
    if (error instanceof HttpError && error.status === 401) askForKey();
  },
});

const ctx: RenderContext = {
  markdown: createMarkdown(window),
  actions: {
    ask: (question) => void ask(question),
    retry: () => void session.retry(), // with the pipeline the question was asked with
    resume: () => void session.resume(),
    download: (url, event) => void download(url, event),
  },
};

const views = new Map<string, { view: MessageView; message: unknown; last: boolean }>();
let frame = 0;
let shownConversation: string | null = null;

session.subscribe(() => {
  if (frame === 0)
    frame = requestAnimationFrame(() => {
      frame = 0;
      render(session.getState());
    });
});

function render(state: ChatState): void {
  const log = el.messages;
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  el.empty.hidden = state.messages.length > 0;
  const seen = new Set<string>();
  let previous: Element = el.empty;
  state.messages.forEach((message, i) => {
    const last = i === state.messages.length - 1;
    seen.add(message.id);
    let entry = views.get(message.id);
    if (entry === undefined) {
      entry = { view: new MessageView(message), message: null, last };
      views.set(message.id, entry);
    }
    if (entry.message !== message || entry.last !== last) {
      entry.view.update(message, last, ctx);
      entry.message = message;
      entry.last = last;
    }
    if (previous.nextElementSibling !== entry.view.el) previous.after(entry.view.el);
    previous = entry.view.el;
  });
  for (const [id, entry] of views) {
    if (!seen.has(id)) {
      entry.view.el.remove();
      views.delete(id);
    }
  }
  if (atBottom) log.scrollTop = log.scrollHeight;

  const busy = session.busy;
  el.status.dataset["state"] = state.status;
  el.status.textContent = statusText(state);
  el.send.disabled = busy;
  if (document.activeElement === el.stop && !busy) el.prompt.focus();
  el.stop.disabled = !busy;

  if (state.conversationId !== shownConversation) {
    shownConversation = state.conversationId;
    const url = new URL(location.href);
    if (state.conversationId === null) url.searchParams.delete("c");
    else url.searchParams.set("c", state.conversationId);
    if (url.href !== location.href) history.replaceState(null, "", url);
    markCurrentConversation();
  }
}

function statusText(state: ChatState): string {
  switch (state.status) {
    case "submitted":
      return "Sending…";
    case "streaming":
      return state.stage === null ? "Answering…" : (STAGES[state.stage] ?? `${state.stage}…`);
    case "reconnecting":
      return `Connection lost. Reconnecting… (attempt ${state.reconnect?.attempt ?? 1})`;
    case "stopped":
      return "Stopped.";
    case "error":
      return `The answer failed: ${state.error?.message ?? "unknown error"}`;
    case "idle":
      return "";
  }
}

async function ask(text: string): Promise<void> {
  const question = text.trim();
  if (question === "" || session.busy) return;
  el.prompt.value = "";
  await session.send(question, { pipeline: el.pipeline.value });
}

// The skip link's target is a form control: focus it (following a link only scrolls).
byId("skip-link", HTMLAnchorElement).addEventListener("click", (event) => {
  event.preventDefault();
  el.prompt.focus();
});

el.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  void ask(el.prompt.value);
});

el.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
    event.preventDefault();
    el.composer.requestSubmit();
  }
});

el.stop.addEventListener("click", () => void session.stop());

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || event.defaultPrevented || el.keyDialog.open) return;
  if (session.busy) {
    void session.stop();
  } else if (el.layout.classList.contains("sidebar-open")) {
    toggleSidebar(false);
    el.sidebarToggle.focus();
  }
});

// Citations jump to their source (and focus it) without touching the URL.
el.messages.addEventListener("click", (event) => {
  const link = (event.target as Element).closest("a.citation");
  if (!(link instanceof HTMLAnchorElement)) return;
  event.preventDefault();
  const target = document.getElementById(decodeURIComponent(link.hash.slice(1)));
  if (target === null) return;
  target.scrollIntoView({ block: "nearest", behavior: "smooth" });
  target.focus({ preventScroll: true });
});

async function download(url: string, event: MouseEvent): Promise<void> {
  // A plain link cannot send the API key; with one, fetch the file and save it from memory.
  if (!authHeaders().has("authorization")) return;
  event.preventDefault();
  try {
    const response = await fetch(url, { headers: authHeaders() });
    if (!response.ok) throw await HttpError.from(response);
    const blob = URL.createObjectURL(await response.blob());
    const link = h("a", {
      href: blob,
      download: new URL(url).pathname.split("/").pop() ?? "result.csv",
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(blob), 10_000);
  } catch (error) {
    el.status.textContent = `Download failed: ${(error as Error).message}`;
  }
}

// -- Conversations ---------------------------------------------------------------------------

interface ConversationSummary {
  id: string;
  title: string;
  updated_at: string;
}

let nextCursor: string | null = null;

async function refreshConversations(more = false): Promise<void> {
  const query = more && nextCursor !== null ? `&cursor=${encodeURIComponent(nextCursor)}` : "";
  let page: { data: ConversationSummary[]; next_cursor: string | null };
  try {
    page = await api(`v1/conversations?limit=30${query}`);
  } catch {
    return; // shown when the user acts; the list simply stays as it was
  }
  if (!more) el.conversations.replaceChildren();
  for (const conversation of page.data) {
    const link = h(
      "a",
      { href: `?c=${encodeURIComponent(conversation.id)}`, "data-id": conversation.id },
      conversation.title || "Untitled",
    );
    el.conversations.append(h("li", {}, link));
  }
  nextCursor = page.next_cursor;
  el.moreConversations.hidden = nextCursor === null;
  el.conversationsEmpty.hidden = el.conversations.childElementCount > 0;
  markCurrentConversation();
}

function markCurrentConversation(): void {
  for (const link of el.conversations.querySelectorAll("a")) {
    if (link.dataset["id"] === session.getState().conversationId)
      link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function openConversation(id: string | null): Promise<void> {
  if (id === null) {
    session.reset();
    return;
  }
  try {
    shownConversation = id;
    await session.load(id);
  } catch (error) {
    session.reset();
    el.status.textContent = `Could not open the conversation: ${(error as Error).message}`;
  }
}

el.conversations.addEventListener("click", (event) => {
  const link = (event.target as Element).closest("a");
  if (!(link instanceof HTMLAnchorElement) || link.dataset["id"] === undefined) return;
  event.preventDefault();
  history.pushState(null, "", link.href);
  void openConversation(link.dataset["id"]);
  toggleSidebar(false);
  el.prompt.focus();
});

el.moreConversations.addEventListener("click", () => void refreshConversations(true));

el.newChat.addEventListener("click", () => {
  history.pushState(null, "", location.pathname);
  void openConversation(null);
  el.prompt.focus();
});

window.addEventListener("popstate", () => {
  void openConversation(new URL(location.href).searchParams.get("c"));
});

// -- Sidebar (a drawer on narrow screens) ---------------------------------------------------

function toggleSidebar(open: boolean): void {
  el.layout.classList.toggle("sidebar-open", open);
  el.sidebarToggle.setAttribute("aria-expanded", String(open));
}

el.sidebarToggle.addEventListener("click", () => {
  const open = !el.layout.classList.contains("sidebar-open");
  toggleSidebar(open);
  if (open) el.sidebar.querySelector<HTMLElement>("a, button, input")?.focus();
});

// -- Pipelines -------------------------------------------------------------------------------

async function loadPipelines(): Promise<void> {
  let names: string[];
  try {
    names = (await api<{ data: string[] }>("v1/pipelines")).data;
  } catch {
    return; // keep the default option
  }
  const wanted = storage("local")?.getItem(PIPELINE_STORAGE) ?? el.pipeline.value;
  el.pipeline.replaceChildren(...names.map((name) => h("option", { value: name }, name)));
  el.pipeline.value = names.includes(wanted)
    ? wanted
    : names.includes("chat")
      ? "chat"
      : (names[0] ?? "");
  session.setOptions({ pipeline: el.pipeline.value });
}

el.pipeline.addEventListener("change", () => {
  storage("local")?.setItem(PIPELINE_STORAGE, el.pipeline.value);
  session.setOptions({ pipeline: el.pipeline.value });
});

// -- Documents -------------------------------------------------------------------------------

interface DocumentSummary {
  id: string;
  title: string;
  chunk_count?: number;
}

async function refreshDocuments(): Promise<void> {
  let docs: DocumentSummary[];
  try {
    docs = (await api<{ data: DocumentSummary[] }>("v1/documents")).data;
  } catch {
    return;
  }
  el.documents.replaceChildren(
    ...docs.map((doc) =>
      h(
        "li",
        {},
        doc.title || doc.id,
        doc.chunk_count === undefined
          ? null
          : h(
              "span",
              { class: "muted" },
              ` · ${doc.chunk_count} chunk${doc.chunk_count === 1 ? "" : "s"}`,
            ),
      ),
    ),
  );
}

el.uploadForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void upload();
});

async function upload(): Promise<void> {
  const file = el.uploadFile.files?.[0];
  if (file === undefined) return;
  const body = new FormData();
  body.append("file", file);
  el.uploadStatus.textContent = `Uploading ${file.name}…`;
  try {
    const doc = await api<DocumentSummary & { status?: string }>("v1/documents", {
      method: "POST",
      body,
    });
    const hint = [...el.pipeline.options].some((o) => o.value === "rag")
      ? " Pick the rag pipeline to ask about it."
      : "";
    el.uploadStatus.textContent = `${doc.title || file.name}: ${doc.status ?? "added"}.${hint}`;
    el.uploadForm.reset();
    await refreshDocuments();
  } catch (error) {
    el.uploadStatus.textContent = `Upload failed: ${(error as Error).message}`;
  }
}

// -- Start -----------------------------------------------------------------------------------

async function refreshAll(): Promise<void> {
  await Promise.all([loadPipelines(), refreshConversations(), refreshDocuments()]);
}

void refreshAll();
void openConversation(new URL(location.href).searchParams.get("c"));
render(session.getState());
