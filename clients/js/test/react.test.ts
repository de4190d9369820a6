// useChat in a real React renderer (react-dom on a jsdom document) against a real server.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { JSDOM } from "jsdom";
import { createElement, type ReactElement } from "react";
import { createRoot, type Root } from "react-dom/client";

import { useChat, type UseChatOptions, type UseChatResult } from "@ssechat/client/react";

import { startServer, waitFor, words, type TestServer } from "./helpers.js";

let server: TestServer;
let dom: JSDOM;

before(async () => {
  server = await startServer();
  dom = new JSDOM("<!doctype html><html><body><div id=root></div></body></html>");
  Object.assign(globalThis, { window: dom.window, document: dom.window.document });
});

after(async () => {
  dom?.window.close();
  await server?.stop();
});

function mount(options: UseChatOptions): {
  latest: () => UseChatResult;
  root: Root;
  el: HTMLElement;
} {
  let latest: UseChatResult | null = null;
  function Chat(): ReactElement {
    const chat = useChat(options);
    latest = chat;
    return createElement(
      "div",
      null,
      createElement("p", { id: "status" }, chat.status),
      ...chat.messages.map((m) => createElement("p", { key: m.id, className: m.role }, m.content)),
    );
  }
  const el = dom.window.document.createElement("div");
  dom.window.document.body.append(el);
  const root = createRoot(el);
  root.render(createElement(Chat));
  return {
    latest: () => {
      assert.ok(latest !== null, "not rendered yet");
      return latest;
    },
    root,
    el: el as unknown as HTMLElement,
  };
}

describe("useChat", () => {
  test("renders the streaming answer and its status, ending idle", async () => {
    const { latest, root, el } = mount({
      api: server.url,
      params: { text: "one two three", delay: 0.05 },
    });
    await waitFor(() => el.querySelector("#status") !== null, 5000, "the first render");
    const actions = latest().send;
    const done = latest().send("Count to three");
    await waitFor(
      () => el.querySelector("#status")?.textContent === "streaming",
      5000,
      "streaming",
    );
    await done;
    await waitFor(() => el.querySelector("#status")?.textContent === "idle", 5000, "idle");
    assert.equal(el.querySelector(".user")?.textContent, "Count to three");
    assert.equal(el.querySelector(".assistant")?.textContent, "one two three");
    assert.equal(latest().messages.at(-1)?.status, "complete");
    // Actions keep their identity across renders (safe in effect dependencies).
    assert.equal(latest().send, actions);
    root.unmount();
  });

  test("stop halts the answer and retry asks again", async () => {
    const text = words(40);
    const { latest, root, el } = mount({ api: server.url, params: { text, delay: 0.05 } });
    await waitFor(() => el.querySelector("#status") !== null, 5000, "the first render");
    const sending = latest().send("Count");
    await waitFor(() => (el.querySelector(".assistant")?.textContent ?? "").split(" ").length >= 3);
    await latest().stop();
    await sending;
    await waitFor(() => el.querySelector("#status")?.textContent === "stopped", 5000, "stopped");
    const partial = el.querySelector(".assistant")?.textContent ?? "";
    assert.ok(text.startsWith(partial) && partial.length < text.length, partial);
    assert.equal(latest().messages.at(-1)?.status, "cancelled");

    const again = latest().retry({ params: { text: "done", delay: 0 } });
    await again;
    await waitFor(
      () => el.querySelector(".assistant")?.textContent === "done",
      5000,
      "the new answer",
    );
    assert.equal(el.querySelectorAll(".assistant").length, 1);
    root.unmount();
  });
});
