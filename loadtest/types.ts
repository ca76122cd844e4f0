// Plain data shared by the load tester's parts: what one request looked like on the wire, and the
// shape of a run file. Everything here is JSON-serialisable because it all ends up in run.json.

export type Endpoint = 'completions' | 'chat';

export interface ChatMessage {
  role: string;
  content: string;
}

/** One request to send: a prompt (completions) or messages (chat), and its max_tokens. */
export interface WorkItem {
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens: number;
  /** Prompt length the generator aimed for, in server tokens when /tokenize was used. */
  targetPromptTokens?: number;
}

export type LoadSpec = { kind: 'rate'; rate: number; burstiness: number } | { kind: 'concurrency'; concurrency: number };

/** Every measured fact about one request. Times are milliseconds; `*AtMs` are since the phase start. */
export interface RequestRecord {
  index: number;
  /** Open loop: when the schedule said to send it; null in closed loop. */
  scheduledAtMs: number | null;
  sentAtMs: number;
  endAtMs: number;
  /** Time to the first chunk that carries content (text, delta.content or reasoning). */
  ttftMs: number | null;
  /** Gaps between consecutive content chunks. */
  itlMs: number[];
  e2eMs: number;
  promptTokens: number | null;
  outputTokens: number | null;
  /** False when the server sent no usage chunk and outputTokens counts content chunks instead. */
  tokensFromUsage: boolean;
  contentChunks: number;
  finishReason: string | null;
  status: number | null;
  ok: boolean;
  /** Error class: the HTTP status as a string ("429", "503", "500") or a stream/network failure. */
  errorKind: string | null;
  error: string | null;
  maxTokens: number;
  /** The chunks' `id`, to match a record with server-side logs. */
  responseId: string | null;
}
