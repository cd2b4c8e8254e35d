/**
 * The assistant seam: one streaming interface, four backends, picked by `OPENAI_API`
 * (or `OPENAI_ASSISTANT_ID`):
 *
 * | kind            | file                     | where the conversation lives             |
 * | --------------- | ------------------------ | ---------------------------------------- |
 * | `conversations` | `responses.ts`           | at the server (a Conversation per user)  |
 * | `responses`     | `stateless_responses.ts` | in the bot's store (`history.ts`)        |
 * | `chat`          | `chat_completions.ts`    | in the bot's store (`history.ts`)        |
 * | `assistants`    | `assistants.ts`          | at the server (a legacy thread per user) |
 *
 * **Committing a turn.** Where the bot keeps the history, `ask` does not store the
 * turn by itself: the caller calls `answer.commit(shownText)` once the answer was
 * delivered to the user, with the answer text as the user saw it (for a stopped answer,
 * the part that was shown). A turn whose delivery failed, or that was never committed,
 * leaves the history as it was. Where the server keeps the conversation, `commit` is
 * absent: the server stored the turn when the response completed (a stopped response
 * stores nothing there).
 *
 * A user's turns never interleave (load, ask, commit): the bot handles one update per
 * user at a time (`sequentialize` in a process, the turn lock across instances).
 */

/** An image for the model (PNG, JPEG, GIF or WebP), held in memory only. */
export interface InputImage {
  mime: string;
  data: Uint8Array;
}

/** A document for the model (a PDF or a text-like file), held in memory only. */
export interface InputFile {
  /** The file name as the user sent it (the model sees it). */
  name: string;
  mime: string;
  data: Uint8Array;
}

/**
 * What the user sent, as model input: the text (a message, a caption, or a voice note's
 * transcript with its marker), and the images and files that came with it. `label` is
 * the readable line kept in place of the media where the bot stores the history, and
 * what /history shows: `"[photo] caption"`, `"[file report.pdf]"`; never the bytes.
 */
export interface UserInput {
  text: string;
  images?: InputImage[];
  files?: InputFile[];
  /** Default `text`. */
  label?: string;
}

/** A text message as {@link UserInput}. */
export const textInput = (text: string): UserInput => ({ text });

/** Whether the input carries images or files. */
export const hasMedia = (input: UserInput): boolean =>
  (input.images?.length ?? 0) + (input.files?.length ?? 0) > 0;

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
  /**
   * `aborted` when the signal fired: `text` holds what was generated until then.
   * `incomplete` when the answer was cut (`MAX_OUTPUT_TOKENS`, a content filter).
   */
  status: "completed" | "incomplete" | "aborted";
  /**
   * Set (with status `incomplete`) when the model stopped sending mid-answer and the
   * call was given up (`stall.ts`): `text` is what was shown before it stopped.
   */
  stalled?: true;
  /**
   * Present where the bot keeps the history (`responses`, `chat`): stores this turn,
   * the user's input as its `label` (never the bytes) and `shownText` (the answer as delivered, without the bot's own
   * notes such as "Stopped"). Call it once, after delivery; later calls do nothing. An
   * empty `shownText` stores nothing. Never rejects: a store failure is logged.
   */
  commit?: (shownText: string) => Promise<void>;
}

/** One message of a conversation read back from the backend. */
export interface HistoryMessage {
  role: "user" | "assistant";
  text: string;
  /** When the backend knows it. */
  at?: Date;
}

/** The backends; the first three are the values of `OPENAI_API`. */
export type AssistantKind = "conversations" | "responses" | "chat" | "assistants";

/**
 * A conversation partner for each Telegram user. With `conversations` and `assistants`
 * the conversation id lives in the store under `thread_id:{user_id}` and the texts
 * only at the server; with `responses` and `chat` the bot keeps a bounded history in
 * its store (`history.ts`).
 */
export interface Assistant {
  readonly kind: AssistantKind;
  /**
   * Sends the user's input and yields the answer's text deltas as they arrive; the
   * generator's return value is the {@link Answer}. Aborting `signal` stops the upstream
   * request and returns what was generated so far with status `aborted`. Upstream
   * failures (after the SDK's own retries) throw {@link AssistantError}; input the
   * backend or the model cannot take (images for a model without vision, files on the
   * Assistants backend) throws one of kind `unsupportedInput`.
   */
  ask(userId: number, input: UserInput, signal?: AbortSignal): AsyncGenerator<string, Answer>;
  /**
   * The last `limit` messages (all when omitted, but never more than
   * {@link HISTORY_READ_MAX}), oldest first; `[]` without a conversation.
   */
  history(userId: number, limit?: number): Promise<HistoryMessage[]>;
  /** Forgets the user's conversation (deletes a history the bot keeps); the next `ask` starts anew. */
  reset(userId: number): Promise<void>;
  /**
   * A start-up check that the server serves the API this backend uses. Rejects with
   * {@link NotServedError} (one line naming the fix) when it answers that it does not,
   * or refuses the key; with an {@link AssistantError} when it cannot tell (the server is
   * unreachable or failing: the caller may go on). Absent where nothing is checked.
   */
  checkServed?(): Promise<void>;
}

/** The most items `history()` reads back, whatever the limit (/export stays bounded). */
export const HISTORY_READ_MAX = 1000;

/**
 * Why an answer failed, in the terms the user-facing text needs (each is a key of the
 * texts): `stalled` means the model sent no text within the first-token timeout
 * (`stall.ts`); `contextFull` means the conversation no longer fits the model's context
 * window, and only /reset helps; `unsupportedInput` means the backend or the model
 * cannot take the images or files sent (a model without vision, the Assistants
 * backend); `unreadableFile` means no text could be read from a document where the
 * backend needs its text (`chat`: a scanned or damaged PDF).
 */
export type AssistantFailure =
  | "rateLimited"
  | "unavailable"
  | "failed"
  | "stalled"
  | "contextFull"
  | "unsupportedInput"
  | "unreadableFile";

/** An assistant call that failed after retries; `kind` picks the user's message. */
export class AssistantError extends Error {
  constructor(readonly kind: AssistantFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AssistantError";
  }
}

/** The server's answer that the configured API is not there, or the key is refused. */
export class NotServedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotServedError";
  }
}

/**
 * Reads a newest-first listing until `limit` messages (all when omitted), at most
 * {@link HISTORY_READ_MAX} items, and returns them oldest first. `toMessage` skips items
 * that are not user or assistant text.
 */
export async function readBackwards<T>(
  items: AsyncIterable<T>,
  toMessage: (item: T) => HistoryMessage | undefined,
  limit?: number,
): Promise<HistoryMessage[]> {
  const messages: HistoryMessage[] = [];
  let read = 0;
  for await (const item of items) {
    const message = toMessage(item);
    if (message) messages.push(message);
    if (limit !== undefined && messages.length >= limit) break;
    if (++read >= HISTORY_READ_MAX) break;
  }
  return messages.reverse();
}

/** The page size for a newest-first listing of `limit` messages. */
export const pageSize = (limit?: number) => Math.min(limit ?? 100, 100);
