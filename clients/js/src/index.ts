/**
 * @ssechat/client: stream ssechat answers from browsers and Node.
 *
 *     import { streamChat } from "@ssechat/client";
 *     await streamChat("http://127.0.0.1:8000/v1/chat/stream", { message: "Hi" }, {
 *       onDelta: ({ text }) => process.stdout.write(text),
 *     });
 *
 * `ChatSession` keeps a conversation's messages and status for a UI (the chat page uses it);
 * `@ssechat/client/react` wraps it as the `useChat` hook.
 */

export * from "./errors.js";
export * from "./events.js";
export * from "./session.js";
export * from "./stream.js";
