// A standard WHATWG EventSource following one ssechat run, for the end-to-end tests.
//
//   node tests/js/eventsource_client.mjs http://127.0.0.1:PORT/v1/runs/RUN_ID/events
//
// The EventSource is the `eventsource` npm package, constructed with the URL and nothing else:
// reconnecting, `retry:` and `Last-Event-ID` are entirely its own doing, exactly as in a
// browser. When the run ends (`complete`, or a server-sent `error`) it closes the source and
// prints one JSON line: {"events": [{type, id, data}, ...], "opens": n, "errors": [...]}.
// `opens` counts connections; `errors` lists the connection errors (drops, refusals) the
// source reported, each with readyState after it. Exit status 0 when the run ended, 1 when the
// source gave up on its own, 3 on the hard timeout; what was seen is printed in every case.

import { EventSource } from "eventsource";

// The canonical event types, plus "message" so an event sent without `event:` shows up too.
const TYPES = ["start", "status", "delta", "metadata", "complete", "error", "message"];
const TIMEOUT_MS = 30_000;

const url = process.argv[2];
if (!url) {
  process.stderr.write("usage: node eventsource_client.mjs URL\n");
  process.exit(2);
}

const events = [];
const errors = [];
let opens = 0;
let finished = false;

const source = new EventSource(url);

function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  source.close();
  const line = JSON.stringify({ events, opens, errors, readyState: source.readyState });
  // Exit only once the line is flushed: stdout may be a pipe the test reads.
  process.stdout.write(`${line}\n`, () => process.exit(code));
}

const timer = setTimeout(() => {
  process.stderr.write(`timeout: no end of the run after ${TIMEOUT_MS} ms\n`);
  finish(3);
}, TIMEOUT_MS);

source.addEventListener("open", () => {
  opens += 1;
});

for (const type of TYPES) {
  source.addEventListener(type, (event) => {
    // "error" is both a server-sent event type and the EventSource's own connection-error
    // signal. Only a message from the server is a MessageEvent carrying `data`.
    if (type === "error" && typeof event.data !== "string") {
      errors.push({
        message: event.message ?? null,
        code: event.code ?? null,
        readyState: source.readyState,
      });
      // CLOSED means the source gave up (a non-200, a 204, a wrong content type): it will not
      // reconnect, so waiting for the timeout would only hide the reason.
      if (source.readyState === EventSource.CLOSED) finish(1);
      return;
    }
    if (finished) return;
    events.push({ type, id: event.lastEventId, data: event.data });
    if (type === "complete" || type === "error") finish(0);
  });
}
