import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  ChatError,
  ConnectionLostError,
  HttpError,
  RunError,
  TimeoutError,
  cancelRun,
  followRun,
  runUrl,
  streamChat,
  type ChatEvent,
  type CsvEvent,
  type FollowupsEvent,
  type MetadataEvent,
  type SourcesEvent,
  type SqlEvent,
  type TableEvent,
} from "@ssechat/client";

import { cuttingFetch, settled, startServer, waitFor, words, type TestServer } from "./helpers.js";

let server: TestServer;

before(async () => {
  server = await startServer({ SSECHAT_KEEPALIVE_INTERVAL: "15" });
});

after(async () => {
  await server?.stop();
});

const fast = (text: string, delay = 0.01) => ({ text, delay });

describe("streamChat", () => {
  test("streams an answer as events in order and resolves with the whole text", async () => {
    const events: ChatEvent[] = [];
    let text = "";
    const result = await streamChat(
      server.chatUrl,
      { message: "hi", params: fast("one two three four") },
      { onEvent: (e) => events.push(e), onDelta: ({ text: t }) => (text += t) },
    );
    assert.deepEqual(
      events.map((e) => e.type),
      ["start", "status", "delta", "delta", "delta", "delta", "metadata", "complete"],
    );
    assert.deepEqual(
      events.map((e) => e.id),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.equal(text, "one two three four");
    assert.equal(result.text, "one two three four");
    const start = events[0];
    assert.ok(start?.type === "start");
    assert.equal(result.runId, start.data.run_id);
    assert.equal(result.conversationId, start.data.conversation_id);
    assert.equal(result.messageId, start.data.message_id);
    assert.equal(result.lastEventId, 8);
    assert.equal(result.reconnects, 0);
  });

  test("calls the typed handler of each canonical event with its data", async () => {
    let sources: SourcesEvent | undefined;
    let followups: FollowupsEvent | undefined;
    let metadata: MetadataEvent | undefined;
    const stages: string[] = [];
    await streamChat(
      server.chatUrl,
      { message: "Where is Paris?", pipeline: "cited" },
      {
        onStatus: (d) => stages.push(d.stage),
        onSources: (d) => (sources = d),
        onFollowups: (d) => (followups = d),
        onMetadata: (d) => (metadata = d),
      },
    );
    assert.deepEqual(stages, ["retrieving", "generating"]);
    assert.deepEqual(
      sources?.sources.map((s) => [s.id, s.title, s.uri]),
      [
        ["1", "Paris", "https://en.wikipedia.org/wiki/Paris"],
        ["2", "Population of Paris (INSEE)", "https://www.insee.fr/en/statistiques"],
      ],
    );
    assert.equal(followups?.questions.length, 2);
    assert.equal(metadata?.quality?.["grounding"], 0.9);

    let sql: SqlEvent | undefined;
    let table: TableEvent | undefined;
    let csv: CsvEvent | undefined;
    await streamChat(
      server.chatUrl,
      { message: "Largest cities?", pipeline: "tabular" },
      { onSql: (d) => (sql = d), onTable: (d) => (table = d), onCsv: (d) => (csv = d) },
    );
    assert.match(sql?.sql ?? "", /^SELECT name, country, population FROM cities/);
    assert.equal(sql?.dialect, "sqlite");
    assert.deepEqual(table?.columns, ["name", "country", "population"]);
    assert.deepEqual(table?.rows[0], ["Tokyo", "Japan", 37_400_068]);
    assert.equal(table?.row_count, 120);
    assert.equal(table?.truncated, true);
    assert.deepEqual(csv, { url: "/v1/files/cities.csv", rows: 120, bytes: 3912 });
  });

  test("rejects a refused request with an HttpError carrying the server's code", async () => {
    const calls: string[] = [];
    const refused = streamChat(
      server.chatUrl,
      { message: "   " },
      { onEvent: (e) => calls.push(e.type) },
    );
    await assert.rejects(refused, (error: unknown) => {
      assert.ok(error instanceof HttpError);
      assert.ok(error instanceof ChatError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "empty_message");
      assert.equal(error.retryable, false);
      return true;
    });
    await assert.rejects(
      streamChat(server.chatUrl, { message: "hi", pipeline: "nope" }),
      (error: unknown) =>
        error instanceof HttpError &&
        error.code === "unknown_pipeline" &&
        /available: .*chat/.test(error.message),
    );
    await assert.rejects(
      followRun(runUrl(server.chatUrl, "run_does_not_exist")),
      (error: unknown) => error instanceof HttpError && error.status === 404,
    );
    assert.deepEqual(calls, []);
  });

  test("an abort rejects with AbortError and cancels the run on the server", async () => {
    const controller = new AbortController();
    let conversationId = "";
    let deltas = 0;
    const stream = streamChat(
      server.chatUrl,
      { message: "count", params: { text: words(60), delay: 0.05 } },
      {
        onStart: (d) => (conversationId = d.conversation_id),
        onDelta: () => {
          deltas += 1;
          if (deltas === 3) controller.abort();
        },
      },
      { signal: controller.signal },
    );
    await assert.rejects(stream, { name: "AbortError" });
    assert.equal(deltas, 3);
    const conversation = await settled(server, conversationId);
    const answer = conversation.messages.at(-1);
    assert.equal(answer?.status, "cancelled");
    assert.ok((answer?.content.split(" ").length ?? 99) < 60, answer?.content);
  });

  test("timeoutMs rejects with a TimeoutError once it has passed", async () => {
    const started = Date.now();
    let conversationId = "";
    await assert.rejects(
      streamChat(
        server.chatUrl,
        { message: "slow", params: { text: words(40), delay: 0.1 } },
        { onStart: (d) => (conversationId = d.conversation_id) },
        { timeoutMs: 500 },
      ),
      (error: unknown) => error instanceof TimeoutError && error.code === "timeout",
    );
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 3000, `took ${elapsed} ms`);
    assert.equal((await settled(server, conversationId)).messages.at(-1)?.status, "cancelled");
  });

  test("a connection cut mid-message resumes the same run from Last-Event-ID with no text twice", async () => {
    const text = words(40);
    const cutter = cuttingFetch(6);
    const ids: number[] = [];
    let received = "";
    const reconnects: number[] = [];
    const result = await streamChat(
      server.chatUrl,
      { message: "count", params: { text, delay: 0.04 } },
      {
        onEvent: (e) => ids.push(e.id),
        onDelta: (d) => (received += d.text),
        onReconnecting: (info) => reconnects.push(info.lastEventId),
      },
      { fetch: cutter.fetch, retry: { initialDelayMs: 50 } },
    );
    // The cut fell inside the 6th delta (seq 8: after start and status); the client had
    // dispatched up to seq 7 and asked the same run for what came after it.
    assert.equal(cutter.cutIn, 8);
    assert.deepEqual(reconnects, [7]);
    assert.equal(cutter.requests.length, 2);
    const [post, resume] = cutter.requests;
    assert.equal(post?.method, "POST");
    assert.equal(resume?.method, "GET");
    assert.equal(resume?.url, runUrl(server.chatUrl, result.runId, "events"));
    assert.equal(resume?.lastEventId, "7");
    // Every event once, in order, and the text exactly once.
    assert.deepEqual(
      ids,
      Array.from({ length: ids.length }, (_, i) => i + 1),
    );
    assert.equal(received, text);
    assert.equal(result.text, text);
    assert.equal(result.reconnects, 1);
  });

  test("a connection silent for idleTimeoutMs is taken as dropped and resumed", async () => {
    const reasons: unknown[] = [];
    let received = "";
    const ids: number[] = [];
    const result = await streamChat(
      server.chatUrl,
      { message: "slow", params: { text: "slow and steady", delay: 0.6 } },
      {
        onEvent: (e) => ids.push(e.id),
        onDelta: (d) => (received += d.text),
        onReconnecting: (info) => reasons.push(info.error),
      },
      { idleTimeoutMs: 250, retry: { initialDelayMs: 20, maxDelayMs: 40, maxAttempts: 10 } },
    );
    assert.ok(reasons.length >= 2, `reconnected ${reasons.length} times`);
    assert.ok(reasons[0] instanceof ConnectionLostError);
    assert.match((reasons[0] as Error).message, /no data for 250 ms/);
    assert.equal(received, "slow and steady");
    assert.equal(result.text, "slow and steady");
    assert.deepEqual(
      ids,
      Array.from({ length: ids.length }, (_, i) => i + 1),
    );
  });

  test("a POST lost before its answer is sent again only when it is idempotent", async () => {
    let posts = 0;
    const losing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (init?.method === "POST" && ++posts === 1) {
        await response.body?.cancel();
        throw new TypeError("network error (response lost by the test)");
      }
      return response;
    };
    await assert.rejects(
      streamChat(server.chatUrl, { message: "hi", params: fast("a b") }, {}, { fetch: losing }),
      (error: unknown) =>
        error instanceof ConnectionLostError && /response lost/.test(error.message),
    );
    assert.equal(posts, 1);

    posts = 0;
    const conversationId = `conv_js_${Date.now()}`;
    const result = await streamChat(
      server.chatUrl,
      {
        message: "hi",
        conversation_id: conversationId,
        client_message_id: "m1",
        params: fast("a b"),
      },
      {},
      { fetch: losing, retry: { initialDelayMs: 20 } },
    );
    assert.equal(posts, 2);
    assert.equal(result.text, "a b");
    // The server handed back the first request's run: one question, one answer.
    const conversation = await settled(server, conversationId);
    assert.deepEqual(
      conversation.messages.map((m) => m.role),
      ["user", "assistant"],
    );
    assert.equal(conversation.messages[1]?.run_id, result.runId);
  });

  test("followRun picks up a run after a given event and cancelRun stops it", async () => {
    const controller = new AbortController();
    let runId = "";
    const first = streamChat(
      server.chatUrl,
      { message: "count", params: { text: words(60), delay: 0.05 } },
      { onStart: (d) => (runId = d.run_id), onStatus: () => controller.abort() },
      { signal: controller.signal, cancelOnAbort: false },
    );
    await assert.rejects(first, { name: "AbortError" });

    const ids: number[] = [];
    let received = "";
    const followed = followRun(
      runUrl(server.chatUrl, runId),
      { onEvent: (e) => ids.push(e.id), onDelta: (d) => (received += d.text) },
      { lastEventId: 2 },
    );
    await waitFor(() => ids.length >= 3, 10_000, "three deltas");
    assert.equal(await cancelRun(runUrl(server.chatUrl, runId, "cancel")), true);
    await assert.rejects(followed, (error: unknown) => {
      assert.ok(error instanceof RunError);
      assert.equal(error.code, "cancelled");
      assert.equal(error.runId, runId);
      assert.equal(error.partialText, received);
      return true;
    });
    assert.equal(ids[0], 3);
    assert.ok(words(60).startsWith(received), received);
    assert.equal(await cancelRun(runUrl(server.chatUrl, runId, "cancel")), false);
  });

  test("an error event rejects with a RunError holding the partial answer", async () => {
    await assert.rejects(
      streamChat(server.chatUrl, {
        message: "hi",
        params: { text: "one two three", fail_after: 2 },
      }),
      (error: unknown) =>
        error instanceof RunError &&
        error.code === "model_error" &&
        error.retryable &&
        error.partialText === "one two",
    );
  });

  test("a handler that throws ends the stream with its error, never retried", async () => {
    const cutter = cuttingFetch(1000);
    const boom = new Error("handler failed");
    await assert.rejects(
      streamChat(
        server.chatUrl,
        { message: "hi", params: fast("a b c") },
        {
          onDelta: () => {
            throw boom;
          },
        },
        { fetch: cutter.fetch },
      ),
      (error: unknown) => error === boom,
    );
    assert.equal(cutter.requests.length, 1);
  });

  test("runUrl places the run routes next to the chat route, under any prefix", () => {
    assert.equal(runUrl("http://h:1/v1/chat/stream", "run_1"), "http://h:1/v1/runs/run_1/events");
    assert.equal(
      runUrl("http://h:1/ai/v1/chat/stream?format=ssechat", "run 2", "cancel"),
      "http://h:1/ai/v1/runs/run%202/cancel",
    );
    assert.equal(runUrl("http://h:1/custom", "r"), "http://h:1/v1/runs/r/events");
  });
});
