/**
 * The assistant seam: one streaming interface, two OpenAI backends (Responses +
 * Conversations in `responses.ts`, the legacy Assistants API in `assistants.ts`).
 */

/** Tokens the backend reports for one answer. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
}

/** What `ask` returns once the stream ends. */
export interface Answer {
  /** The whole answer text (the concatenation of the yielded deltas). */
  text: string;
  usage?: Usage;
  /** `aborted` when the signal fired: `text` holds what was generated until then. */
  status: "completed" | "incomplete" | "aborted";
  /**
   * Set (with status `incomplete`) when the model stopped sending mid-answer and the
   * call was given up (`stall.ts`): `text` is what was shown before it stopped.
   */
  stalled?: true;
}

/** One message of a conversation read back from the backend. */
export interface HistoryMessage {
  role: "user" | "assistant";
  text: string;
  /** When the backend knows it. */
  at?: Date;
}

/**
 * A conversation partner for each Telegram user. The conversation id lives in the
 * store under `thread_id:{user_id}`; the texts live only at the backend (privacy).
 */
export interface Assistant {
  readonly kind: "responses" | "assistants";
  /**
   * Sends the user's text and yields the answer's text deltas as they arrive; the
   * generator's return value is the {@link Answer}. Aborting `signal` stops the upstream
   * request and returns what was generated so far with status `aborted`. Upstream
   * failures (after the SDK's own retries) throw {@link AssistantError}.
   */
  ask(userId: number, text: string, signal?: AbortSignal): AsyncGenerator<string, Answer>;
  /** The last `limit` messages (all when omitted), oldest first; `[]` without a conversation. */
  history(userId: number, limit?: number): Promise<HistoryMessage[]>;
  /** Forgets the user's conversation; the next `ask` starts a new one. */
  reset(userId: number): Promise<void>;
}

/**
 * Why an answer failed, in the terms the user-facing text needs. `stalled`: the model
 * sent no text within the first-token timeout (`stall.ts`).
 */
export type AssistantFailure = "rateLimited" | "unavailable" | "failed" | "stalled";

/** An assistant call that failed after retries; `kind` picks the user's message. */
export class AssistantError extends Error {
  constructor(readonly kind: AssistantFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AssistantError";
  }
}

/**
 * Reads a newest-first listing until `limit` messages (all when omitted) and returns
 * them oldest first. `toMessage` skips items that are not user or assistant text.
 */
export async function readBackwards<T>(
  items: AsyncIterable<T>,
  toMessage: (item: T) => HistoryMessage | undefined,
  limit?: number,
): Promise<HistoryMessage[]> {
  const messages: HistoryMessage[] = [];
  for await (const item of items) {
    const message = toMessage(item);
    if (message) messages.push(message);
    if (limit !== undefined && messages.length >= limit) break;
  }
  return messages.reverse();
}

/** The page size for a newest-first listing of `limit` messages. */
export const pageSize = (limit?: number) => Math.min(limit ?? 100, 100);
