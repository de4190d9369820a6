import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ChatSession, type ChatStatus } from "@ssechat/client";

import { cuttingFetch, settled, startServer, waitFor, words, type TestServer } from "./helpers.js";

let server: TestServer;

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.stop();
});

/** Every status the session went through, without repeats in a row. */
function statuses(session: ChatSession): ChatStatus[] {
  const seen: ChatStatus[] = [session.getState().status];
  session.subscribe(() => {
    const status = session.getState().status;
    if (seen.at(-1) !== status) seen.push(status);
  });
  return seen;
}

describe("ChatSession", () => {
  test("send streams the answer into messages, saved under the session's conversation", async () => {
    const session = new ChatSession({
      api: server.url,
      params: { text: "one two three", delay: 0.02 },
    });
    const seen = statuses(session);
    const lengths: number[] = [];
    session.subscribe(() => lengths.push(session.getState().messages.at(-1)?.content.length ?? 0));
    const answer = await session.send("Count to three");
    const state = session.getState();
    assert.deepEqual(seen, ["idle", "submitted", "streaming", "idle"]);
    assert.equal(answer.status, "complete");
    assert.equal(answer.content, "one two three");
    assert.deepEqual(
      state.messages.map((m) => [m.role, m.content, m.status]),
      [
        ["user", "Count to three", "complete"],
        ["assistant", "one two three", "complete"],
      ],
    );
    // The answer grew piece by piece rather than appearing whole.
    assert.ok(new Set(lengths).size >= 4, `lengths ${lengths.join(",")}`);
    assert.ok(state.conversationId !== null);
    const stored = await settled(server, state.conversationId);
    assert.deepEqual(
      stored.messages.map((m) => [m.role, m.content]),
      [
        ["user", "Count to three"],
        ["assistant", "one two three"],
      ],
    );
    // A second question continues the same conversation.
    await session.send("Again");
    assert.equal((await settled(server, state.conversationId)).messages.length, 4);
  });

  test("stop cancels the run and keeps the partial answer as cancelled", async () => {
    const text = words(60);
    const session = new ChatSession({ api: server.url, params: { text, delay: 0.05 } });
    const seen = statuses(session);
    const sending = session.send("Count");
    await waitFor(() => (session.getState().messages.at(-1)?.content.split(" ").length ?? 0) >= 3);
    await session.stop();
    const answer = await sending;
    assert.equal(answer.status, "cancelled");
    assert.equal(session.getState().status, "stopped");
    assert.deepEqual(seen.slice(-2), ["streaming", "stopped"]);
    assert.ok(
      text.startsWith(answer.content) && answer.content.length < text.length,
      answer.content,
    );
    const conversationId = session.getState().conversationId ?? "";
    const stored = (await settled(server, conversationId)).messages.at(-1);
    assert.equal(stored?.status, "cancelled");
    assert.equal(stored?.content, answer.content);
  });

  test("a dropped connection shows as reconnecting and resumes without duplicated text", async () => {
    const text = words(30);
    const cutter = cuttingFetch(4);
    const session = new ChatSession({
      api: server.url,
      params: { text, delay: 0.04 },
      fetch: cutter.fetch,
      retry: { initialDelayMs: 100 },
    });
    const seen = statuses(session);
    const answer = await session.send("Count");
    assert.deepEqual(seen, ["idle", "submitted", "streaming", "reconnecting", "streaming", "idle"]);
    assert.equal(answer.content, text);
    assert.equal(answer.status, "complete");
    assert.equal(cutter.requests.length, 2);
  });

  test("retry asks the last question again, replacing the failed answer", async () => {
    const session = new ChatSession({
      api: server.url,
      params: { text: "one two three", fail_after: 1 },
    });
    const failed = await session.send("Count");
    assert.equal(failed.status, "error");
    assert.equal(failed.error?.code, "model_error");
    assert.equal(failed.content, "one");
    assert.equal(session.getState().status, "error");

    const answer = await session.retry({ params: { text: "one two three" } });
    assert.equal(answer?.status, "complete");
    assert.deepEqual(
      session.getState().messages.map((m) => [m.role, m.content]),
      [
        ["user", "Count"],
        ["assistant", "one two three"],
      ],
    );
  });

  test("load shows a stored conversation and resumes an answer still being generated", async () => {
    const text = words(30);
    const first = new ChatSession({ api: server.url, params: { text, delay: 0.04 } });
    void first.send("Count");
    await waitFor(() => (first.getState().messages.at(-1)?.content.split(" ").length ?? 0) >= 5);
    const conversationId = first.getState().conversationId ?? "";
    first.dispose(); // a closed tab: the run goes on within the server's grace period
    await new Promise((r) => setTimeout(r, 1100)); // let the server save some of the text

    const second = new ChatSession({ api: server.url });
    await second.load(conversationId);
    assert.equal(second.getState().conversationId, conversationId);
    await waitFor(
      () => second.getState().messages.at(-1)?.status === "complete",
      10_000,
      "the resumed answer",
    );
    const messages = second.getState().messages;
    assert.deepEqual(
      messages.map((m) => [m.role, m.content]),
      [
        ["user", "Count"],
        ["assistant", text],
      ],
    );
  });

  test("load brings back an answer's SQL, table preview and CSV link with its size", async () => {
    const first = new ChatSession({ api: server.url, pipeline: "tabular" });
    const streamed = await first.send("Which cities are the largest?");
    assert.equal(streamed.status, "complete");

    const second = new ChatSession({ api: server.url });
    await second.load(first.getState().conversationId ?? "");
    const loaded = second.getState().messages.at(-1);
    assert.deepEqual(loaded?.sql, streamed.sql); // the query and its dialect
    assert.deepEqual(loaded?.table, streamed.table);
    assert.deepEqual(loaded?.csv, streamed.csv); // the link, its rows and its size
    assert.equal(second.getState().messages[0]?.table, null);
  });

  test("send while an answer streams is refused", async () => {
    const session = new ChatSession({ api: server.url, params: { text: words(20), delay: 0.05 } });
    const sending = session.send("First");
    await assert.rejects(session.send("Second"), { code: "busy" });
    await session.stop();
    await sending;
  });
});
