// Seed 000's "JavaScript (Browser)" client, copied from shared/seeds/000 unchanged but for the
// base URL, run by Node. What a browser would provide is shimmed: `document` (one element,
// #response) and `console.log`, whose calls are kept. Prints one JSON line:
// {"response": <the #response element's text>, "logs": [[...console.log args]]}.
//
//   node tests/js/seeds/seed000_fetch.mjs http://127.0.0.1:PORT

const BASE = process.argv[2];
const element = { innerText: "" };
globalThis.document = { getElementById: (id) => (id === "response" ? element : null) };
const logs = [];
console.log = (...args) => logs.push(args);

// ---- seed 000, verbatim but for `${BASE}` ----
const response = await fetch(`${BASE}/api/vanna/v2/chat_sse`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    message: 'Show me all tables',
    headers: { 'x-user-id': 'user123' }
  })
});

const reader = response.body.getReader();
const decoder = new TextDecoder();

while (true) {
  const { done, value } = await reader.read();
  if (done) break;
  
  const chunk = decoder.decode(value);
  const lines = chunk.split('\n');
  
  for (const line of lines) {
    if (line.startsWith('event: ')) {
      const eventType = line.substring(7);
    } else if (line.startsWith('data: ')) {
      const data = JSON.parse(line.substring(6));
      
      if (data.event === 'chunk') {
        // Append text to UI
        document.getElementById('response').innerText += data.text;
      } else if (data.event === 'complete') {
        console.log('Complete:', data);
      }
    }
  }
}
// ---- end of seed 000 ----

process.stdout.write(`${JSON.stringify({ response: element.innerText, logs })}\n`);
