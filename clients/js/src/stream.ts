/**
 * `streamChat`: one chat answer over a fetch-based POST stream, parsed with
 * `eventsource-parser`, that survives dropped connections.
 *
 * A run on the server is not a connection: when the connection drops (a network error, the
 * body ending before the run did, or no byte for `idleTimeoutMs`), the client waits with
 * exponential backoff and follows the same run again through `GET /v1/runs/{id}/events` with
 * `Last-Event-ID` set to the last sequence number it dispatched. The server replays exactly
 * what came after it, and the client also drops any event whose id it has already seen, so
 * no text arrives twice. A message cut in half by the drop is discarded with the parser that
 * held it (as a browser's EventSource does) and arrives whole on the next connection.
 *
 * Deliberate choices:
 * - Handlers run synchronously, in order, inside the read loop; a handler that throws ends
 *   the stream with that error (and is never retried).
 * - Without a run id nothing can be resumed, so a connection lost before the response
 *   headers is only retried when the request is idempotent (it names both
 *   `conversation_id` and `client_message_id`, which makes the server hand back the same
 *   run) or when the server refused it with 429/503 (no run was started).
 * - Aborting through `options.signal` (or `timeoutMs`) also asks the server to cancel the
 *   run (`cancelOnAbort`, default true): "stop" stops the model, not just the socket.
 */

import { createParser, type EventSourceMessage } from "eventsource-parser";

import {
  ChatError,
  ConnectionLostError,
  HttpError,
  ProtocolError,
  RunError,
  TimeoutError,
} from "./errors.js";
import {
  isEventType,
  type ChatEvent,
  type CompleteEvent,
  type EventMap,
  type EventType,
} from "./events.js";

/** The body of `POST /v1/chat/stream`. */
export interface ChatRequest {
  message: string;
  /** Continue this conversation (a new id creates it); a new one if unset. */
  conversation_id?: string;
  /** Idempotency key: a resubmit in the same conversation streams the same run. */
  client_message_id?: string;
  pipeline?: string;
  model?: string;
  params?: Record<string, unknown>;
}

/** One typed handler per canonical event: `onStart`, `onDelta`, `onSources`, … */
export type EventHandlers = {
  [K in EventType as `on${Capitalize<K>}`]?: (data: EventMap[K], id: number) => void;
};

export interface OpenInfo {
  runId: string | null;
  /** False for the first connection, true for every resume. */
  resumed: boolean;
  /** The `Last-Event-ID` this connection was opened with (0: from the start). */
  lastEventId: number;
}

export interface ReconnectInfo {
  /** 1 for the first retry after a connection that delivered events. */
  attempt: number;
  delayMs: number;
  /** Why the connection was lost. */
  error: unknown;
  lastEventId: number;
}

export interface ChatHandlers extends EventHandlers {
  /** Every event, before its typed handler. */
  onEvent?: (event: ChatEvent) => void;
  /** Each connection that answered 2xx. */
  onOpen?: (info: OpenInfo) => void;
  /** The connection was lost; the client will reconnect after `delayMs`. */
  onReconnecting?: (info: ReconnectInfo) => void;
}

export interface RetryOptions {
  /** Connections in a row that may fail without a new event before giving up (5). */
  maxAttempts?: number;
  /** The first delay; default the server's `retry:` (3000 ms from ssechat), else 1000. */
  initialDelayMs?: number;
  /** The cap of the doubling delay (30 000). */
  maxDelayMs?: number;
  /** Each delay is randomised by up to ±this fraction (0.2), so clients spread out. */
  jitter?: number;
}

export type HeadersOption = HeadersInit | (() => HeadersInit | Promise<HeadersInit>);

export interface StreamOptions {
  /** Abort the stream; rejects with the signal's reason (and cancels the run, see below). */
  signal?: AbortSignal;
  /** Give up if the run has not ended within this many ms: rejects with `TimeoutError`. */
  timeoutMs?: number;
  /**
   * A connection with no byte (not even a `: ping`) for this long is taken as dropped and
   * resumed (45 000: three of ssechat's 15 s keepalives).
   */
  idleTimeoutMs?: number;
  /** Reconnection policy; `false` turns reconnecting off. */
  retry?: RetryOptions | false;
  /** Extra request headers (e.g. `Authorization`); a function is called per connection. */
  headers?: HeadersOption;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
  /** On abort or timeout, also `POST /v1/runs/{id}/cancel` (default true). */
  cancelOnAbort?: boolean;
}

/** How a run ended well. */
export interface ChatResult {
  runId: string;
  /** Null when a resumed stream started after the `start` event. */
  conversationId: string | null;
  messageId: string;
  /** The whole answer (from `complete`). */
  text: string;
  complete: CompleteEvent;
  /** The sequence number of the `complete` event. */
  lastEventId: number;
  /** How many times the connection was re-established. */
  reconnects: number;
}

/**
 * Ask a question and stream the answer: `POST url` (the server's `/v1/chat/stream`) with
 * `body`, calling `handlers` for each event. Resolves when the run completes; rejects with
 * `HttpError` (non-2xx), `RunError` (an `error` event), `TimeoutError`, `ConnectionLostError`
 * or, when aborted, the signal's reason.
 */
export function streamChat(
  url: string,
  body: ChatRequest,
  handlers: ChatHandlers = {},
  options: StreamOptions = {},
): Promise<ChatResult> {
  return drive(
    {
      url,
      method: "POST",
      body: JSON.stringify(body),
      idempotent: body.conversation_id !== undefined && body.client_message_id !== undefined,
      eventsUrl: (runId) => runUrl(url, runId, "events"),
      cancelUrl: (runId) => runUrl(url, runId, "cancel"),
    },
    null,
    0,
    handlers,
    options,
  );
}

/**
 * Follow a run that already exists (`GET /v1/runs/{id}/events`, e.g. from `runUrl`), from
 * after `lastEventId` (0: from its start), with the same handlers, resume and errors as
 * `streamChat`.
 */
export function followRun(
  eventsUrl: string,
  handlers: ChatHandlers = {},
  options: StreamOptions & { lastEventId?: number } = {},
): Promise<ChatResult> {
  const runId = decodeURIComponent(
    /\/runs\/([^/]+)\/events\/?$/.exec(new URL(eventsUrl, pageUrl()).pathname)?.[1] ?? "",
  );
  const cancel = eventsUrl.replace(/\/events(\/?)(?=$|\?)/, "/cancel$1");
  return drive(
    {
      url: eventsUrl,
      method: "GET",
      body: null,
      idempotent: true,
      eventsUrl: () => eventsUrl,
      cancelUrl: () => cancel,
    },
    runId || null,
    options.lastEventId ?? 0,
    handlers,
    options,
  );
}

/**
 * Stop a run's generation (`POST /v1/runs/{id}/cancel`); its streams end with an `error`
 * event of code `cancelled`. Resolves false if the run had already ended.
 */
export async function cancelRun(
  cancelUrl: string,
  options: Pick<StreamOptions, "headers" | "fetch" | "signal"> = {},
): Promise<boolean> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const init: RequestInit = { method: "POST", headers: await resolveHeaders(options.headers) };
  if (options.signal) init.signal = options.signal;
  const response = await fetchImpl(cancelUrl, init);
  if (response.ok) return true;
  const error = await HttpError.from(response);
  if (error.status === 409) return false;
  throw error;
}

/**
 * The URL of a run's `events` or `cancel` route, next to the chat route `chatUrl`
 * (`…/v1/chat/stream` → `…/v1/runs/{id}/events`); relative URLs resolve against the page.
 */
export function runUrl(
  chatUrl: string,
  runId: string,
  action: "events" | "cancel" = "events",
): string {
  const url = new URL(chatUrl, pageUrl());
  const tail = `/runs/${encodeURIComponent(runId)}/${action}`;
  const path = url.pathname.replace(/\/chat\/stream\/?$/, tail);
  url.pathname = path === url.pathname ? `/v1${tail}` : path;
  url.search = "";
  url.hash = "";
  return url.href;
}

// -- The read loop -------------------------------------------------------------------------

interface Plan {
  url: string;
  method: "GET" | "POST";
  body: string | null;
  /** May the first request be sent again after a network error? */
  idempotent: boolean;
  eventsUrl: (runId: string) => string;
  cancelUrl: (runId: string) => string;
}

interface State {
  runId: string | null;
  conversationId: string | null;
  messageId: string | null;
  lastEventId: number;
  serverRetryMs: number | null;
  text: string;
  reconnects: number;
}

/** An error that ends the stream at once: never retried. */
class Fatal {
  constructor(readonly error: unknown) {}
}

const IDLE = Symbol("idle");

async function drive(
  plan: Plan,
  runId: string | null,
  lastEventId: number,
  handlers: ChatHandlers,
  options: StreamOptions,
): Promise<ChatResult> {
  const state: State = {
    runId,
    conversationId: null,
    messageId: null,
    lastEventId,
    serverRetryMs: null,
    text: "",
    reconnects: 0,
  };
  const overall = new AbortController();
  const unlink = link(options.signal, overall);
  const timer =
    options.timeoutMs === undefined
      ? undefined
      : setTimeout(
          () => overall.abort(new TimeoutError(options.timeoutMs ?? 0)),
          options.timeoutMs,
        );
  try {
    return await loop(plan, state, handlers, options, overall.signal);
  } catch (error) {
    if (!overall.signal.aborted) throw error instanceof Fatal ? error.error : error;
    if (state.runId !== null && options.cancelOnAbort !== false) {
      await cancelQuietly(plan.cancelUrl(state.runId), options);
    }
    throw overall.signal.reason;
  } finally {
    clearTimeout(timer);
    unlink();
  }
}

async function loop(
  plan: Plan,
  state: State,
  handlers: ChatHandlers,
  options: StreamOptions,
  signal: AbortSignal,
): Promise<ChatResult> {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const idleMs = options.idleTimeoutMs ?? 45_000;
  let attempt = 0;
  let resuming = false;
  for (;;) {
    const conn = new AbortController();
    const unlinkConn = link(signal, conn);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const touch = (): void => {
      clearTimeout(idle);
      idle = setTimeout(() => conn.abort(IDLE), idleMs);
    };
    const seenBefore = state.lastEventId;
    let failure: unknown;
    try {
      touch();
      const response = await fetchImpl(resuming ? plan.eventsUrl(state.runId ?? "") : plan.url, {
        method: resuming ? "GET" : plan.method,
        headers: await requestHeaders(
          options.headers,
          !resuming && plan.method === "POST",
          state.lastEventId,
        ),
        body: resuming ? null : plan.body,
        signal: conn.signal,
        cache: "no-store",
      });
      touch();
      const ended = await read(response, resuming, state, handlers, touch);
      if (ended) return ended;
      failure = new ConnectionLostError("the stream ended before the run did");
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof Fatal) throw error;
      if (error instanceof HttpError && !error.retryable) throw new Fatal(error);
      failure =
        conn.signal.reason === IDLE
          ? new ConnectionLostError(`no data for ${idleMs} ms`, error)
          : error;
    } finally {
      clearTimeout(idle);
      unlinkConn();
    }

    if (state.lastEventId > seenBefore) attempt = 0; // this connection made progress
    attempt += 1;
    const policy = options.retry === false ? null : (options.retry ?? {});
    const resumable =
      state.runId !== null || (failure instanceof HttpError ? failure.retryable : plan.idempotent);
    if (policy === null || !resumable || attempt > (policy.maxAttempts ?? 5)) {
      if (failure instanceof ChatError) throw new Fatal(failure);
      throw new Fatal(new ConnectionLostError(`connection lost: ${describe(failure)}`, failure));
    }
    const delayMs = backoff(policy, attempt, state.serverRetryMs);
    handlers.onReconnecting?.({ attempt, delayMs, error: failure, lastEventId: state.lastEventId });
    await sleep(delayMs, signal);
    resuming = state.runId !== null;
    state.reconnects += 1;
  }
}

/** Read one response to its end: the run's result, or null if the connection ended first. */
async function read(
  response: Response,
  resumed: boolean,
  state: State,
  handlers: ChatHandlers,
  touch: () => void,
): Promise<ChatResult | null> {
  if (!response.ok) throw await HttpError.from(response);
  if (response.status === 204) {
    throw new Fatal(
      new ProtocolError("the run has ended and has nothing after the last event seen"),
    );
  }
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("text/event-stream") || response.body === null) {
    await response.body?.cancel();
    throw new Fatal(
      new ProtocolError(`expected text/event-stream, got ${type || "no content type"}`),
    );
  }
  state.runId = response.headers.get("x-run-id") ?? state.runId;
  call(() => handlers.onOpen?.({ runId: state.runId, resumed, lastEventId: state.lastEventId }));

  let ended: ChatResult | null = null;
  const parser = createParser({
    onEvent: (message) => {
      if (ended === null) ended = dispatch(message, state, handlers);
    },
    onRetry: (ms) => {
      state.serverRetryMs = ms;
    },
  });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  try {
    while (ended === null) {
      const { done, value } = await reader.read();
      if (done) break;
      touch();
      parser.feed(decoder.decode(value, { stream: true }));
    }
  } finally {
    reader.cancel().catch(() => undefined); // release the connection, whatever happened
  }
  return ended;
}

/** Hand one SSE message to the handlers; the result once the run has completed. */
function dispatch(
  message: EventSourceMessage,
  state: State,
  handlers: ChatHandlers,
): ChatResult | null {
  const type = message.event ?? "message";
  if (!isEventType(type)) return null; // a newer server's event: skip it
  const id = Number(message.id ?? "0");
  const seq = Number.isSafeInteger(id) ? id : 0;
  if (seq > 0 && seq <= state.lastEventId) return null; // already seen: never twice
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    throw new Fatal(new ProtocolError(`event ${type} ${seq} has invalid JSON data`));
  }
  const event = { type, id: seq, data } as ChatEvent;
  if (seq > 0) state.lastEventId = seq;
  if (event.type === "start") {
    state.runId = event.data.run_id;
    state.conversationId = event.data.conversation_id;
    state.messageId = event.data.message_id;
  } else if (event.type === "delta") {
    state.text += event.data.text;
  }
  call(() => {
    handlers.onEvent?.(event);
    const handler = handlers[`on${type[0]?.toUpperCase()}${type.slice(1)}` as keyof EventHandlers];
    (handler as ((data: unknown, id: number) => void) | undefined)?.(event.data, seq);
  });
  if (event.type === "error") {
    const { code, message: text, retryable } = event.data;
    throw new Fatal(new RunError(code, text, retryable, state.runId, state.text));
  }
  if (event.type !== "complete") return null;
  return {
    runId: state.runId ?? "",
    conversationId: state.conversationId,
    messageId: event.data.message_id,
    text: event.data.text,
    complete: event.data,
    lastEventId: state.lastEventId,
    reconnects: state.reconnects,
  };
}

// -- Small helpers -------------------------------------------------------------------------

function call(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    throw new Fatal(error);
  }
}

async function requestHeaders(
  option: HeadersOption | undefined,
  json: boolean,
  lastEventId: number,
): Promise<Headers> {
  const headers = await resolveHeaders(option);
  headers.set("accept", "text/event-stream");
  if (json) headers.set("content-type", "application/json");
  if (lastEventId > 0) headers.set("last-event-id", String(lastEventId));
  return headers;
}

async function resolveHeaders(option: HeadersOption | undefined): Promise<Headers> {
  return new Headers(typeof option === "function" ? await option() : option);
}

async function cancelQuietly(url: string, options: StreamOptions): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 3000);
  try {
    await cancelRun(url, { ...options, signal: controller.signal });
  } catch {
    // Best effort: the server's grace period stops an abandoned run anyway.
  } finally {
    clearTimeout(timer);
  }
}

function backoff(policy: RetryOptions, attempt: number, serverRetryMs: number | null): number {
  const base = policy.initialDelayMs ?? serverRetryMs ?? 1000;
  const delay = Math.min(policy.maxDelayMs ?? 30_000, base * 2 ** (attempt - 1));
  const jitter = policy.jitter ?? 0.2;
  return Math.max(0, Math.round(delay * (1 + jitter * (2 * Math.random() - 1))));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const done = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", done);
      resolve();
    }, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Abort `to` when `from` aborts, with the same reason; returns the unlink function. */
function link(from: AbortSignal | undefined, to: AbortController): () => void {
  if (from === undefined) return () => undefined;
  if (from.aborted) {
    to.abort(from.reason);
    return () => undefined;
  }
  const forward = (): void => to.abort(from.reason);
  from.addEventListener("abort", forward, { once: true });
  return () => from.removeEventListener("abort", forward);
}

function pageUrl(): string | undefined {
  return typeof location === "undefined" ? undefined : location.href;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : "";
    return `${error.message}${cause}`;
  }
  return String(error);
}
