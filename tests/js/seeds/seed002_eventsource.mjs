// Seed 002's clients, copied from shared/seeds/002 with only their TypeScript types removed,
// run by Node: `SSEService` (a browser EventSource on `GET /api/chat/stream?message=`; here the
// `eventsource` npm package, the WHATWG EventSource for Node, installed as the global a browser
// has) or, with MODE `post`, `streamChat` (fetch on `POST /api/chat/message`).
// Prints one JSON line: {"messages": [...], "connects", "completes", "errors": [...]}.
//
//   node tests/js/seeds/seed002_eventsource.mjs http://127.0.0.1:PORT eventsource|post "question"

import { EventSource } from "eventsource";

globalThis.EventSource = EventSource;
const [BASE, MODE, QUESTION] = process.argv.slice(2);

// ---- seed 002, verbatim but for `${BASE}` and the removed types ----
export class SSEService {
  eventSource = null;
  reconnectTimeout = 3000;
  reconnectAttempts = 0;
  
  connect(message, handlers) {
    // For GET endpoint (recommended)
    const url = `${BASE}/api/chat/stream?message=${encodeURIComponent(message)}`;
    
    this.eventSource = new EventSource(url);
    
    // Handle different event types
    this.eventSource.addEventListener('message', (event) => {
      try {
        const data = JSON.parse(event.data);
        handlers.onMessage?.(data);
      } catch (e) {
        console.error('Failed to parse SSE message:', e);
      }
    });
    
    this.eventSource.addEventListener('connected', (event) => {
      this.reconnectAttempts = 0;
      handlers.onConnect?.();
    });
    
    this.eventSource.addEventListener('done', (event) => {
      handlers.onComplete?.();
      this.disconnect();
    });
    
    this.eventSource.addEventListener('error', (event) => {
      if (event.target.readyState === EventSource.CLOSED) {
        handlers.onError?.('Connection closed');
        this.attemptReconnect(message, handlers);
      }
    });
  }
  
  attemptReconnect(message, handlers) {
    if (this.reconnectAttempts < 3) {
      this.reconnectAttempts++;
      setTimeout(() => {
        this.connect(message, handlers);
      }, this.reconnectTimeout * this.reconnectAttempts);
    }
  }
  
  disconnect() {
    if (this.eventSource) {
      this.eventSource.close();
      this.eventSource = null;
    }
  }
}

// For POST endpoints that return SSE
async function streamChat(message, onUpdate) {
  const response = await fetch(`${BASE}/api/chat/message`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({ message })
  });
  
  if (!response.ok) {
    throw new Error('Failed to start stream');
  }
  
  const reader = response.body?.getReader();
  const decoder = new TextDecoder();
  
  if (!reader) {
    throw new Error('No response body');
  }
  
  let buffer = '';
  
  while (true) {
    const { done, value } = await reader.read();
    
    if (done) break;
    
    buffer += decoder.decode(value, { stream: true });
    
    // Parse SSE messages from buffer
    const messages = buffer.split('\n\n');
    buffer = messages.pop() || '';
    
    for (const message of messages) {
      if (message.trim()) {
        const lines = message.split('\n');
        let eventType = 'message';
        let eventData = '';
        
        for (const line of lines) {
          if (line.startsWith('event: ')) {
            eventType = line.slice(7);
          } else if (line.startsWith('data: ')) {
            eventData = line.slice(6);
          }
        }
        
        if (eventData) {
          try {
            const data = JSON.parse(eventData);
            onUpdate(data);
          } catch (e) {
            console.error('Failed to parse:', e);
          }
        }
      }
    }
  }
}
// ---- end of seed 002 ----

const seen = { messages: [], connects: 0, completes: 0, errors: [] };
const report = () => {
  process.stdout.write(`${JSON.stringify(seen)}\n`, () => process.exit(0));
};
setTimeout(() => {
  seen.errors.push("timeout");
  report();
}, 30_000);

if (MODE === "post") {
  await streamChat(QUESTION, (data) => seen.messages.push(data));
  report();
} else {
  const sse = new SSEService();
  sse.connect(QUESTION, {
    onMessage: (data) => seen.messages.push(data),
    onConnect: () => { seen.connects += 1; },
    onComplete: () => { seen.completes += 1; report(); },
    // The seed reconnects with a fresh request after this; one report is enough here.
    onError: (error) => { seen.errors.push(error); sse.reconnectAttempts = 3; report(); },
  });
}
