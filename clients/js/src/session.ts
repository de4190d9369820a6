/**
 * `ChatSession`: a conversation's messages and status for a user interface, built on
 * `streamChat`. It is a small external store (`subscribe` + `getState`, each state a new
 * immutable snapshot), so the React hook is a thin `useSyncExternalStore` over it and the
 * chat page uses it without any framework.
 *
 * - `send` asks a question: a user message and a streaming assistant message appear at
 *   once; the assistant message grows with each `delta` and gathers the run's stage,
 *   sources, SQL, table, CSV and follow-up questions.
 * - `stop` cancels the run on the server (the model stops; the partial answer is kept and
 *   saved as `cancelled`), then the stream ends on the server's own `cancelled` event.
 * - A dropped connection shows as status `reconnecting` while the client resumes the run;
 *   if it cannot, the message ends `error` (`connection_lost`) and `resume` tries again.
 * - `retry` asks the last question again, replacing a failed or stopped answer.
 *
 * Every request names `conversation_id` and a fresh `client_message_id`, so a POST lost
 * before its answer started can be sent again without starting a second run.
 */

import { ChatError, HttpError, RunError, isAbortError } from "./errors.js";
import type { CsvEvent, MetadataEvent, SqlEvent, Source, TableEvent } from "./events.js";
import {
  cancelRun,
  followRun,
  runUrl,
  streamChat,
  type ChatHandlers,
  type ChatRequest,
  type StreamOptions,
} from "./stream.js";

export type ChatStatus = "idle" | "submitted" | "streaming" | "reconnecting" | "stopped" | "error";
export type MessageStatus = "streaming" | "complete" | "cancelled" | "interrupted" | "error";

export interface ChatMessage {
  /** Stable client-side key (the server's message id for messages loaded from it). */
  id: string;
  role: "user" | "assistant";
  content: string;
  status: MessageStatus;
  /** The server's message id, once known. */
  messageId: string | null;
  pipeline: string | null;
  runId: string | null;
  /** The last event of the run this message has seen: where `resume` picks up. */
  lastEventId: number;
  stage: string | null;
  sources: Source[];
  sql: SqlEvent | null;
  table: TableEvent | null;
  csv: { url: string; rows: number | null; bytes: number | null } | null;
  followups: string[];
  metadata: MetadataEvent | null;
  error: { code: string; message: string; retryable: boolean } | null;
}

export interface ChatState {
  messages: readonly ChatMessage[];
  status: ChatStatus;
  /** Why the last answer failed (`status` is `error`). */
  error: ChatError | Error | null;
  conversationId: string | null;
  /** The run being streamed. */
  runId: string | null;
  /** The current stage of the run being streamed (`retrieving`, `generating`, …). */
  stage: string | null;
  /** Set while reconnecting. */
  reconnect: { attempt: number; delayMs: number } | null;
}

export interface ChatSessionOptions extends Omit<StreamOptions, "signal" | "cancelOnAbort"> {
  /** The server's base URL; "" (default) is the page's own origin. */
  api?: string;
  conversationId?: string | null;
  pipeline?: string;
  model?: string;
  params?: Record<string, unknown>;
  /** An assistant message ended (any status). */
  onFinish?: (message: ChatMessage) => void;
  /** An answer failed (not called for a stop). */
  onError?: (error: Error) => void;
}

export interface SendOptions {
  pipeline?: string;
  model?: string;
  params?: Record<string, unknown>;
}

interface Current {
  controller: AbortController;
  messageId: string;
  runId: string | null;
  stopRequested: boolean;
}

const STOP = Symbol("stop");
const DISPOSE = Symbol("dispose");
const BUSY: readonly ChatStatus[] = ["submitted", "streaming", "reconnecting"];

export class ChatSession {
  private options: ChatSessionOptions;
  private state: ChatState;
  private listeners = new Set<() => void>();
  private current: Current | null = null;

  constructor(options: ChatSessionOptions = {}) {
    this.options = options;
    this.state = {
      messages: [],
      status: "idle",
      error: null,
      conversationId: options.conversationId ?? null,
      runId: null,
      stage: null,
      reconnect: null,
    };
  }

  // -- The external store -------------------------------------------------------------------

  getState = (): ChatState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Replace some options (pipeline, params, headers…) for the next requests. */
  setOptions(options: Partial<ChatSessionOptions>): void {
    this.options = { ...this.options, ...options };
  }

  get busy(): boolean {
    return BUSY.includes(this.state.status);
  }

  // -- Actions ------------------------------------------------------------------------------

  /** Ask `text`; resolves with the assistant message once its run has ended (never rejects
   * for a failed answer: that is in the state). */
  async send(text: string, overrides: SendOptions = {}): Promise<ChatMessage> {
    if (this.busy) throw new ChatError("busy", "an answer is still streaming: stop it first");
    const conversationId = this.state.conversationId ?? randomId("conv");
    const clientMessageId = randomId("cmsg");
    const pipeline = overrides.pipeline ?? this.options.pipeline;
    const user = blankMessage(clientMessageId, "user", pipeline ?? null);
    user.content = text;
    user.status = "complete";
    const answer = blankMessage(randomId("pending"), "assistant", pipeline ?? null);
    this.set({
      messages: [...this.state.messages, user, answer],
      conversationId,
      status: "submitted",
      error: null,
      runId: null,
      stage: null,
      reconnect: null,
    });
    const body: ChatRequest = {
      message: text,
      conversation_id: conversationId,
      client_message_id: clientMessageId,
    };
    if (pipeline !== undefined) body.pipeline = pipeline;
    const model = overrides.model ?? this.options.model;
    if (model !== undefined) body.model = model;
    const params = overrides.params ?? this.options.params;
    if (params !== undefined) body.params = params;
    return this.run(answer.id, (handlers, options) =>
      streamChat(this.url("v1/chat/stream"), body, handlers, options),
    );
  }

  /** Stop the answer being streamed: cancels its run on the server. */
  async stop(): Promise<void> {
    const current = this.current;
    if (current === null || current.stopRequested) return;
    current.stopRequested = true;
    // Before the response headers there is no run id yet: `onOpen` cancels it then.
    if (current.runId !== null) await this.cancel(current);
  }

  /** Ask the last question again, replacing the answer after it (e.g. a failed one). */
  async retry(overrides: SendOptions = {}): Promise<ChatMessage | null> {
    if (this.busy) return null;
    const messages = this.state.messages;
    const index = messages.map((m) => m.role).lastIndexOf("user");
    const question = messages[index];
    if (question === undefined) return null;
    this.set({ messages: messages.slice(0, index) });
    const pipeline = overrides.pipeline ?? question.pipeline ?? undefined;
    return this.send(
      question.content,
      pipeline === undefined ? overrides : { ...overrides, pipeline },
    );
  }

  /**
   * Follow the last answer's run again from the last event it saw: after the automatic
   * retries gave up, or for an answer still generating (loaded from the server, say).
   */
  async resume(): Promise<ChatMessage | null> {
    if (this.busy) return null;
    const last = this.state.messages.at(-1);
    if (last?.role !== "assistant" || last.runId === null) return null;
    if (last.status === "complete" || last.status === "cancelled") return null;
    const runId = last.runId;
    // Without a known position (loaded from the server) the run is replayed from its start.
    const from = last.lastEventId;
    this.patch(last.id, (m) => ({
      ...m,
      status: "streaming",
      error: null,
      ...(from === 0
        ? { content: "", sources: [], sql: null, table: null, csv: null, followups: [] }
        : {}),
    }));
    this.set({ status: "submitted", error: null, runId, stage: null, reconnect: null });
    const url = runUrl(this.url("v1/chat/stream"), runId, "events");
    return this.run(last.id, (handlers, options) =>
      followRun(url, handlers, { ...options, lastEventId: from }),
    );
  }

  /** Show conversation `id` from the server (resuming its last answer if still running). */
  async load(id: string): Promise<void> {
    this.abort();
    const response = await (this.options.fetch ?? globalThis.fetch.bind(globalThis))(
      this.url(`v1/conversations/${encodeURIComponent(id)}`),
      { headers: await this.headers() },
    );
    if (!response.ok) throw await HttpError.from(response);
    const conversation = (await response.json()) as { id: string; messages: StoredMessage[] };
    this.set({
      messages: conversation.messages.map(fromStored),
      conversationId: conversation.id,
      status: "idle",
      error: null,
      runId: null,
      stage: null,
      reconnect: null,
    });
    if (this.state.messages.at(-1)?.status === "streaming") void this.resume();
  }

  /** Start a new conversation (or show `conversationId`'s messages empty). */
  reset(conversationId: string | null = null): void {
    this.abort();
    this.set({
      messages: [],
      conversationId,
      status: "idle",
      error: null,
      runId: null,
      stage: null,
      reconnect: null,
    });
  }

  /** Stop listening (the run goes on on the server, within its grace period). */
  dispose(): void {
    this.abort();
  }

  // -- Internals ----------------------------------------------------------------------------

  private abort(): void {
    this.current?.controller.abort(DISPOSE);
    this.current = null;
  }

  private async run(
    id: string,
    start: (handlers: ChatHandlers, options: StreamOptions) => Promise<unknown>,
  ): Promise<ChatMessage> {
    const current: Current = {
      controller: new AbortController(),
      messageId: id,
      runId: this.state.runId,
      stopRequested: false,
    };
    this.current = current;
    const live = (): boolean => this.current === current;
    const update = (fn: (m: ChatMessage) => ChatMessage): void => {
      if (live()) this.patch(id, fn);
    };
    const handlers: ChatHandlers = {
      onOpen: ({ runId }) => {
        if (!live()) return;
        current.runId = runId;
        this.set({ status: "streaming", runId, reconnect: null });
        update((m) => ({ ...m, runId }));
        if (current.stopRequested && runId !== null) void this.cancel(current);
      },
      onReconnecting: ({ attempt, delayMs }) => {
        if (live()) this.set({ status: "reconnecting", reconnect: { attempt, delayMs } });
      },
      onEvent: (event) => update((m) => ({ ...m, lastEventId: event.id || m.lastEventId })),
      onStart: (data) => {
        current.runId = data.run_id;
        if (live()) this.set({ conversationId: data.conversation_id, runId: data.run_id });
        update((m) => ({
          ...m,
          runId: data.run_id,
          messageId: data.message_id,
          pipeline: data.pipeline,
        }));
        if (current.stopRequested) void this.cancel(current);
      },
      onStatus: (data) => {
        if (live()) this.set({ stage: data.stage });
        update((m) => ({ ...m, stage: data.stage }));
      },
      onSources: (data) => update((m) => ({ ...m, sources: data.sources })),
      onDelta: (data) => update((m) => ({ ...m, content: m.content + data.text })),
      onSql: (data) => update((m) => ({ ...m, sql: data })),
      onTable: (data) => update((m) => ({ ...m, table: data })),
      onCsv: (data: CsvEvent) => update((m) => ({ ...m, csv: data })),
      onFollowups: (data) => update((m) => ({ ...m, followups: data.questions })),
      onMetadata: (data) => update((m) => ({ ...m, metadata: data })),
      onComplete: (data) =>
        update((m) => ({
          ...m,
          content: data.text,
          status: "complete",
          messageId: data.message_id,
        })),
    };
    const options: StreamOptions = {
      ...this.options,
      headers: () => this.headers(),
      signal: current.controller.signal,
      cancelOnAbort: false, // `stop` cancels explicitly; a dispose leaves the run to its grace
    };
    try {
      await start(handlers, options);
      if (live()) this.set({ status: "idle", stage: null, reconnect: null });
    } catch (error) {
      if (live()) this.fail(id, error, current);
    } finally {
      if (live()) this.current = null;
    }
    const message =
      this.state.messages.find((m) => m.id === id) ?? blankMessage(id, "assistant", null);
    this.options.onFinish?.(message);
    return message;
  }

  private fail(id: string, error: unknown, current: Current): void {
    const stopped =
      current.controller.signal.reason === STOP ||
      (error instanceof RunError && error.code === "cancelled");
    if (stopped) {
      this.patch(id, (m) => ({ ...m, status: "cancelled", stage: null }));
      this.set({ status: "stopped", stage: null, reconnect: null });
      return;
    }
    if (isAbortError(error) || current.controller.signal.reason === DISPOSE) return;
    const err = error instanceof Error ? error : new Error(String(error));
    const chat = error instanceof ChatError ? error : null;
    this.patch(id, (m) => ({
      ...m,
      status: chat?.code === "interrupted" ? "interrupted" : "error",
      stage: null,
      error: {
        code: chat?.code ?? "error",
        message: err.message,
        retryable: chat?.retryable ?? false,
      },
    }));
    this.set({ status: "error", error: err, stage: null, reconnect: null });
    this.options.onError?.(err);
  }

  private async cancel(current: Current): Promise<void> {
    if (current.runId === null) return;
    try {
      await cancelRun(runUrl(this.url("v1/chat/stream"), current.runId, "cancel"), {
        headers: () => this.headers(),
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
      });
    } catch {
      current.controller.abort(STOP); // the server cannot be told: at least stop listening
      return;
    }
    // The stream now ends with the server's `cancelled` event; do not wait forever for it.
    setTimeout(() => {
      if (this.current === current) current.controller.abort(STOP);
    }, 5000);
  }

  private async headers(): Promise<Headers> {
    const option = this.options.headers;
    return new Headers(typeof option === "function" ? await option() : option);
  }

  private url(path: string): string {
    return `${(this.options.api ?? "").replace(/\/+$/, "")}/${path}`;
  }

  private patch(id: string, fn: (m: ChatMessage) => ChatMessage): void {
    this.set({ messages: this.state.messages.map((m) => (m.id === id ? fn(m) : m)) });
  }

  private set(partial: Partial<ChatState>): void {
    this.state = { ...this.state, ...partial };
    for (const listener of this.listeners) listener();
  }
}

// -- Messages --------------------------------------------------------------------------------

/** A message as `GET /v1/conversations/{id}` returns it. */
interface StoredMessage {
  id: string;
  role: string;
  content: string;
  status: string;
  pipeline: string | null;
  run_id: string | null;
  sources: Source[] | null;
  sql: string | null;
  /** The `sql` event's dialect; null for an answer saved before it was kept. */
  sql_dialect: string | null;
  /** The `table` event the answer streamed. */
  table_preview: TableEvent | null;
  csv_url: string | null;
  /** The `csv` event the answer streamed; null for an answer saved before it was kept. */
  csv: CsvEvent | null;
  error: { code?: string; message?: string; retryable?: boolean } | null;
}

function fromStored(stored: StoredMessage): ChatMessage {
  const message = blankMessage(
    stored.id,
    stored.role === "user" ? "user" : "assistant",
    stored.pipeline,
  );
  const statuses: readonly MessageStatus[] = [
    "streaming",
    "complete",
    "cancelled",
    "interrupted",
    "error",
  ];
  return {
    ...message,
    content: stored.content,
    status: statuses.find((s) => s === stored.status) ?? "complete",
    messageId: stored.id,
    runId: stored.run_id,
    sources: stored.sources ?? [],
    sql: stored.sql === null ? null : { sql: stored.sql, dialect: stored.sql_dialect ?? "" },
    table: stored.table_preview,
    csv:
      stored.csv ??
      (stored.csv_url === null ? null : { url: stored.csv_url, rows: null, bytes: null }),
    error:
      stored.error === null
        ? null
        : {
            code: stored.error.code ?? "error",
            message: stored.error.message ?? "",
            retryable: stored.error.retryable ?? false,
          },
  };
}

function blankMessage(
  id: string,
  role: "user" | "assistant",
  pipeline: string | null,
): ChatMessage {
  return {
    id,
    role,
    content: "",
    status: "streaming",
    messageId: null,
    pipeline,
    runId: null,
    lastEventId: 0,
    stage: null,
    sources: [],
    sql: null,
    table: null,
    csv: null,
    followups: [],
    metadata: null,
    error: null,
  };
}

/** `prefix_` and 24 random hex digits (crypto.getRandomValues works on plain http too). */
export function randomId(prefix: string): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `${prefix}_${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}
