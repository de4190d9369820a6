/**
 * The errors a stream can end with. Every one is a `ChatError` with a machine-readable
 * `code` and whether trying again may help (`retryable`); an abort by the caller's own
 * `AbortSignal` is not one of them: it rejects with the signal's reason, as `fetch` does.
 */

/** Base class: `code` is the server's error code where there is one. */
export class ChatError extends Error {
  override name = "ChatError";
  readonly code: string;
  readonly retryable: boolean;

  constructor(
    code: string,
    message: string,
    options: { retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/**
 * The server refused the request before any stream started: a non-2xx answer. `code` and
 * `message` come from its JSON body `{"error": {"code", "message"}}` when it has one.
 */
export class HttpError extends ChatError {
  override name = "HttpError";
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, code: string, message: string, body: unknown) {
    super(code, `${status} ${code}: ${message}`, {
      retryable: status === 429 || status === 502 || status === 503 || status === 504,
    });
    this.status = status;
    this.body = body;
  }

  /** Read `response`'s body into an `HttpError` (never throws). */
  static async from(response: Response): Promise<HttpError> {
    let text = "";
    try {
      text = await response.text();
    } catch {
      // The body could not be read; the status alone has to do.
    }
    let body: unknown = text;
    let code = `http_${response.status}`;
    let message = text.trim().slice(0, 500) || response.statusText || "request failed";
    try {
      body = JSON.parse(text);
      const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      if (typeof error?.code === "string") code = error.code;
      if (typeof error?.message === "string") message = error.message;
    } catch {
      // Not JSON (a proxy's HTML page, say): keep the text.
    }
    return new HttpError(response.status, code, message, body);
  }
}

/** The run ended with an `error` event (`cancelled`, `interrupted`, `model_error`, …). */
export class RunError extends ChatError {
  override name = "RunError";
  readonly runId: string | null;
  /** The answer generated before the error, which the server also saved. */
  readonly partialText: string;

  constructor(
    code: string,
    message: string,
    retryable: boolean,
    runId: string | null,
    partialText: string,
  ) {
    super(code, message, { retryable });
    this.runId = runId;
    this.partialText = partialText;
  }
}

/** `timeoutMs` passed before the run ended. */
export class TimeoutError extends ChatError {
  override name = "TimeoutError";

  constructor(ms: number) {
    super("timeout", `no end of the stream within ${ms} ms`, { retryable: true });
  }
}

/** The connection dropped and could not be resumed (no run id yet, or retries used up). */
export class ConnectionLostError extends ChatError {
  override name = "ConnectionLostError";

  constructor(message: string, cause?: unknown) {
    super("connection_lost", message, { retryable: true, cause });
  }
}

/** The server answered 2xx with something that is not an ssechat event stream. */
export class ProtocolError extends ChatError {
  override name = "ProtocolError";

  constructor(message: string) {
    super("bad_response", message);
  }
}

/** True for the rejection of an aborted fetch or stream (`AbortError`). */
export function isAbortError(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { name?: unknown }).name === "AbortError"
  );
}
