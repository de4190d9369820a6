/**
 * The canonical ssechat events, as they arrive on the wire: the SSE `event:` field is the
 * type, `id:` the run's sequence number and `data:` one JSON object. These mirror the frozen
 * dataclasses of `ssechat/events.py` field for field (tuples arrive as arrays, timestamps as
 * ISO 8601 strings).
 */

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface Timings {
  ttft_ms: number | null;
  total_ms: number | null;
}

export interface Source {
  id: string;
  title: string;
  text: string;
  score: number;
  uri: string | null;
  metadata: Record<string, unknown>;
}

export interface StartEvent {
  run_id: string;
  conversation_id: string;
  message_id: string;
  pipeline: string;
  model: string;
  created_at: string;
}

export interface StatusEvent {
  /** `retrieving`, `generating_sql`, `running_sql`, `generating`, … or a pipeline's own. */
  stage: string;
  detail: string | null;
}

export interface SourcesEvent {
  sources: Source[];
}

export interface DeltaEvent {
  /** The next piece of the answer. */
  text: string;
}

export interface SqlEvent {
  sql: string;
  dialect: string;
}

export interface TableEvent {
  columns: string[];
  /** A preview, capped by the server; `row_count` is the full count. */
  rows: unknown[][];
  row_count: number;
  truncated: boolean;
}

export interface CsvEvent {
  url: string;
  rows: number;
  bytes: number;
}

export interface FollowupsEvent {
  questions: string[];
}

export interface MetadataEvent {
  model: string;
  usage: Usage | null;
  timings: Timings | null;
  quality: Record<string, unknown> | null;
}

export interface CompleteEvent {
  message_id: string;
  /** The whole answer: the concatenated deltas. */
  text: string;
  finish_reason: string | null;
  sql: string | null;
  csv_url: string | null;
  usage: Usage | null;
}

export interface ErrorEvent {
  /** e.g. `cancelled`, `interrupted`, `model_error`, `shutdown`. */
  code: string;
  message: string;
  retryable: boolean;
}

/** Every canonical event type and its `data:`. */
export interface EventMap {
  start: StartEvent;
  status: StatusEvent;
  sources: SourcesEvent;
  delta: DeltaEvent;
  sql: SqlEvent;
  table: TableEvent;
  csv: CsvEvent;
  followups: FollowupsEvent;
  metadata: MetadataEvent;
  complete: CompleteEvent;
  error: ErrorEvent;
}

export type EventType = keyof EventMap;

/** One event of a run: its type, its sequence number (the SSE `id:`) and its data. */
export type ChatEvent = {
  [K in EventType]: { type: K; id: number; data: EventMap[K] };
}[EventType];

export const EVENT_TYPES: readonly EventType[] = [
  "start",
  "status",
  "sources",
  "delta",
  "sql",
  "table",
  "csv",
  "followups",
  "metadata",
  "complete",
  "error",
];

export function isEventType(type: string): type is EventType {
  return (EVENT_TYPES as readonly string[]).includes(type);
}
