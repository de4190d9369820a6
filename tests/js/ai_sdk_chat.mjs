// The Vercel AI SDK's own client code, run by Node: the `ai` package's DefaultChatTransport sends
// UIMessages to `POST /api/chat` (its default api path, here under the server's base URL) and
// readUIMessageStream turns the UI message stream into the assistant's UIMessage, as useChat
// does in a browser. With MODE `resume` it follows the chat's answer in progress instead
// (`reconnectToStream`, what useChat's `resume` calls).
// Prints one JSON line: {"message": <the last UIMessage>, "snapshots": n, "errors": [...],
// "chunks": [chunk types], "status": <HTTP-level outcome>}.
//
//   node tests/js/ai_sdk_chat.mjs http://127.0.0.1:PORT send|resume CHAT_ID "question" [history.json]

import { DefaultChatTransport, readUIMessageStream } from "ai";

const [BASE, MODE, CHAT_ID, QUESTION, HISTORY] = process.argv.slice(2);
const history = HISTORY ? JSON.parse(HISTORY) : [];
const transport = new DefaultChatTransport({ api: `${BASE}/api/chat` });
const result = { message: null, snapshots: 0, errors: [], chunks: [], status: "ok" };

const messages = [
  ...history,
  { id: `user-${Date.now()}`, role: "user", parts: [{ type: "text", text: QUESTION ?? "" }] },
];
let stream;
try {
  stream = MODE === "resume"
    ? await transport.reconnectToStream({ chatId: CHAT_ID })
    : await transport.sendMessages({
        chatId: CHAT_ID,
        messages,
        trigger: "submit-message",
        messageId: undefined,
        abortSignal: undefined,
      });
} catch (error) {
  result.status = `refused: ${error.message}`;
}
if (stream === null) result.status = "no active stream";
if (stream) {
  const [forChunks, forMessages] = stream.tee();
  const counting = (async () => {
    for await (const chunk of forChunks) result.chunks.push(chunk.type);
  })();
  for await (const message of readUIMessageStream({
    stream: forMessages,
    onError: (error) => result.errors.push(String(error?.message ?? error)),
  })) {
    result.message = message;
    result.snapshots += 1;
  }
  await counting;
}
process.stdout.write(`${JSON.stringify(result)}\n`);
