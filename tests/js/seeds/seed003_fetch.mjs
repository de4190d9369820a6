// Seed 003's client, from shared/seeds/003, run by Node: its "Browser JavaScript" fetch, whose
// read loop the seed leaves as `// Read stream chunks`, completed with the plainest loop (split
// lines, parse each `data: ` line) and the seed's own `switch (data.type)`. Only the base URL
// is changed. Prints one JSON line: {"message", "sources", "events": [types seen], "done"}.
//
//   node tests/js/seeds/seed003_fetch.mjs http://127.0.0.1:PORT /chat/1/stream "question"

const [BASE, PATH, QUESTION] = process.argv.slice(2);
const seen = { message: "", sources: [], events: [], done: false };
const appendToMessage = (text) => { seen.message += text; };
const displaySources = (sources) => { seen.sources.push(sources); };
const eventSource = { close: () => { seen.done = true; } };

// ---- seed 003: the fetch example ----
await fetch(`${BASE}${PATH}`, {
  method: 'POST',
  headers: {'Content-Type': 'application/json'},
  body: JSON.stringify({question: QUESTION, model: "mistral"})
})
.then(async response => {
  const reader = response.body.getReader();
  // Read stream chunks
  const decoder = new TextDecoder();
  let buffer = '';
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      if (!line.startsWith('data: ')) continue;
      const event = { data: line.slice(6) };
      // ---- seed 003: the onmessage handler ----
      const data = JSON.parse(event.data);
      seen.events.push(data.type);

      switch(data.type) {
        case 'chunk':
          // Append text to chat message
          appendToMessage(data.content);
          break;
        case 'sources':
          // Show document sources
          displaySources(data.content);
          break;
        case 'done':
          // Complete the message
          eventSource.close();
          break;
      }
    }
  }
});

process.stdout.write(`${JSON.stringify(seen)}\n`);
