/**
 * A real ssechat server for the tests (`python -m ssechat serve` on a free loopback port,
 * the scripted model, a throwaway data directory) and a `fetch` that cuts a response in the
 * middle of an SSE message, as a dying proxy or a dropped mobile link would.
 */

import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file runs from clients/js/build/test/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..");
export const PIPELINES = ["cited", "tabular", "unsafe"].map((name) => `tests.pipelines:${name}`);

export interface TestServer {
  url: string;
  chatUrl: string;
  log(): string;
  stop(): Promise<void>;
  /** `GET path` as JSON. */
  get<T>(path: string): Promise<T>;
}

export async function startServer(env: Record<string, string> = {}): Promise<TestServer> {
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), "ssechat-js-"));
  const args = ["-m", "ssechat", "serve", "--port", String(port)];
  for (const pipeline of PIPELINES) args.push("--pipeline", pipeline);
  const child = spawn(process.env["PYTHON"] ?? "python3", args, {
    cwd: REPO,
    env: {
      ...process.env,
      SSECHAT_MODEL_BACKEND: "scripted",
      SSECHAT_DATA_DIR: dataDir,
      SSECHAT_DRAIN_TIMEOUT: "1",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  child.stdout.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${log}`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`server not up after 60 s:\n${log}`);
    }
    await sleep(100);
  }
  return {
    url,
    chatUrl: `${url}/v1/chat/stream`,
    log: () => log,
    async get<T>(path: string): Promise<T> {
      const response = await fetch(`${url}${path}`);
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const exited = once(child, "exit");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` until it is true (or fail after `ms`). */
export async function waitFor(
  check: () => boolean,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

export interface SeenRequest {
  url: string;
  method: string;
  lastEventId: string | null;
}

export interface Cutter {
  fetch: typeof fetch;
  requests: SeenRequest[];
  /** The id of the delta message the cut fell inside (null: nothing was cut). */
  cutIn: number | null;
}

const DELTA_START = /id: (\d+)\nevent: delta\ndata: /g;

/**
 * A `fetch` whose FIRST event-stream response is cut inside the `afterDeltas`-th delta
 * message: the body delivers that message's `id:`, `event:` and two bytes of its `data:`
 * line, then fails as a network error does, and the real connection is closed. Every other
 * request goes through untouched.
 */
export function cuttingFetch(afterDeltas: number): Cutter {
  const cutter: Cutter = { fetch: fetch, requests: [], cutIn: null };
  let armed = true;
  cutter.fetch = async (input, init) => {
    const headers = new Headers(init?.headers);
    cutter.requests.push({
      url: String(input),
      method: init?.method ?? "GET",
      lastEventId: headers.get("last-event-id"),
    });
    const response = await fetch(input, init);
    const type = response.headers.get("content-type") ?? "";
    if (!armed || response.body === null || !type.includes("text/event-stream")) return response;
    armed = false;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const encoder = new TextEncoder();
    let text = ""; // everything received (the stream is ASCII JSON here)
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          return;
        }
        text += decoder.decode(value, { stream: true });
        const starts = [...text.matchAll(DELTA_START)];
        const target = starts[afterDeltas - 1];
        if (target === undefined) {
          controller.enqueue(encoder.encode(text.slice(sent)));
          sent = text.length;
          return;
        }
        const end = target.index + target[0].length + 2; // two bytes into the JSON value
        if (end > sent) controller.enqueue(encoder.encode(text.slice(sent, end)));
        sent = end;
        cutter.cutIn = Number(target[1]);
        await reader.cancel(); // the real connection goes away too
        controller.error(new TypeError("network error (connection cut by the test)"));
      },
      cancel: () => reader.cancel(),
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return cutter;
}

/** A conversation as the server stores it. */
export interface StoredConversation {
  id: string;
  messages: { role: string; content: string; status: string; run_id: string | null }[];
}

/** Wait until the conversation's last message has left `streaming`, and return it. */
export async function settled(
  server: TestServer,
  conversationId: string,
): Promise<StoredConversation> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const conversation = await server.get<StoredConversation>(
      `/v1/conversations/${conversationId}`,
    );
    if (conversation.messages.at(-1)?.status !== "streaming" || Date.now() > deadline)
      return conversation;
    await sleep(50);
  }
}

export function words(n: number, prefix = "word"): string {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`).join(" ");
}
