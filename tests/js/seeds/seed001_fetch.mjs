// Seed 001's client (`frontend/src/lib/sse-client.ts`), copied from shared/seeds/001 with only
// its TypeScript types removed, run by Node against PATH (`/api/chat/stream` or `/chat/stream`)
// with the body the seed's ChatInterface sends. Prints one JSON line with every callback call:
// {"stages", "tokens", "sources", "quality", "followups", "metadata", "completes", "errors"}.
//
//   node tests/js/seeds/seed001_fetch.mjs http://127.0.0.1:PORT /api/chat/stream "question"

const [BASE, PATH, QUESTION] = process.argv.slice(2);

// ---- seed 001, verbatim but for the removed types ----
export async function streamSSE(
  url,
  body,
  callbacks,
  signal,
  options = {}
) {
  const {
    maxRetries = 3,
    retryDelay = 1000,
    timeout = 60000,
  } = options;

  let retryCount = 0;

  while (retryCount < maxRetries) {
    try {
      await connectSSE(url, body, callbacks, signal, timeout);
      return; // Success
    } catch (error) {
      retryCount++;
      
      // Don't retry on abort or max retries reached
      if (
        signal?.aborted ||
        retryCount >= maxRetries ||
        (error instanceof Error && error.message === 'Stream aborted')
      ) {
        throw error;
      }

      // Wait before retry with exponential backoff
      await new Promise((resolve) =>
        setTimeout(resolve, retryDelay * Math.pow(2, retryCount - 1))
      );
    }
  }
}

async function connectSSE(
  url,
  body,
  callbacks,
  signal,
  timeout
) {
  // Create timeout controller
  const timeoutController = new AbortController();
  const timeoutId = timeout
    ? setTimeout(() => timeoutController.abort(), timeout)
    : undefined;

  // Combine abort signals
  const combinedSignal = combineAbortSignals(signal, timeoutController.signal);

  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Accept: 'text/event-stream',
      },
      body: JSON.stringify(body),
      signal: combinedSignal,
    });

    if (!response.ok) {
      const error = await response.json().catch(() => ({}));
      throw new Error(error.message || `HTTP ${response.status}`);
    }

    const reader = response.body?.getReader();
    if (!reader) {
      throw new Error('Response body is not readable');
    }

    const decoder = new TextDecoder();
    let buffer = '';

    try {
      while (true) {
        const { done, value } = await reader.read();

        if (done) {
          callbacks.onComplete?.();
          break;
        }

        // Decode chunk and add to buffer
        buffer += decoder.decode(value, { stream: true });

        // Process complete events
        const events = buffer.split('\n\n');
        buffer = events.pop() || ''; // Keep incomplete event in buffer

        for (const event of events) {
          if (!event.trim()) continue;

          parseSSEEvent(event, callbacks);
        }
      }
    } finally {
      reader.releaseLock();
    }
  } finally {
    if (timeoutId) {
      clearTimeout(timeoutId);
    }
  }
}

function parseSSEEvent(event, callbacks) {
  const lines = event.split('\n');
  let data = '';
  let eventType = 'message';

  for (const line of lines) {
    if (line.startsWith('event: ')) {
      eventType = line.slice(7).trim();
    } else if (line.startsWith('data: ')) {
      data += line.slice(6);
    }
  }

  if (!data) return;

  // Handle special [DONE] marker
  if (data === '[DONE]') {
    callbacks.onComplete?.();
    return;
  }

  try {
    const parsed = JSON.parse(data);

    // Route to appropriate callback based on content
    if (parsed.stage) {
      callbacks.onStage?.(parsed.stage);
    }

    if (parsed.token) {
      callbacks.onToken?.(parsed.token);
    }

    if (parsed.sources) {
      callbacks.onSources?.(parsed.sources);
    }

    if (parsed.quality_score !== undefined) {
      callbacks.onQualityScore?.(parsed.quality_score);
    }

    if (parsed.follow_up_questions) {
      callbacks.onFollowUps?.(parsed.follow_up_questions);
    }

    if (parsed.metadata) {
      callbacks.onMetadata?.(parsed.metadata);
    }

    if (parsed.error) {
      callbacks.onError?.(new Error(parsed.error));
    }
  } catch (parseError) {
    console.error('Failed to parse SSE data:', data, parseError);
  }
}

// Helper to combine abort signals
function combineAbortSignals(...signals) {
  const controller = new AbortController();

  for (const signal of signals) {
    if (signal?.aborted) {
      controller.abort();
      break;
    }

    signal?.addEventListener('abort', () => controller.abort(), { once: true });
  }

  return controller.signal;
}
// ---- end of seed 001 ----

const seen = {
  stages: [], tokens: [], sources: [], quality: [], followups: [], metadata: [],
  completes: 0, errors: [],
};
await streamSSE(
  `${BASE}${PATH}`,
  { message: QUESTION, session_id: 'current-session' },  // as the seed's ChatInterface sends
  {
    onStage: (stage) => seen.stages.push(stage),
    onToken: (token) => seen.tokens.push(token),
    onSources: (sources) => seen.sources.push(sources),
    onQualityScore: (score) => seen.quality.push(score),
    onFollowUps: (questions) => seen.followups.push(questions),
    onMetadata: (metadata) => seen.metadata.push(metadata),
    onComplete: () => { seen.completes += 1; },
    onError: (error) => seen.errors.push(error.message),
  },
);
process.stdout.write(`${JSON.stringify(seen)}\n`);
