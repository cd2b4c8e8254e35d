/**
 * The history the bot keeps itself, for the backends whose server keeps none
 * (`OPENAI_API=responses` and `chat`): each user's messages, in the bot's store under
 * `history:{user_id}` (see `keys.ts`).
 *
 * - **Bounded**: after each turn the oldest turns are dropped until the rest is at most
 *   `maxTokens` by {@link estimateTokens}; a turn larger than the whole bound is not kept.
 * - **Expiring**: every write sets a TTL of `ttlSeconds`, so a history untouched that
 *   long (no message from the user) disappears by itself.
 * - **Deleted at once** by {@link History.clear} (/reset).
 *
 * A turn is stored only once its answer was delivered ({@link History.append} is
 * called through `Answer.commit`, see `assistant.ts`). Two turns of one user never
 * overlap: the bot handles one update per user at a time (`sequentialize` in each
 * process, the turn lock across instances; see `bot.ts` and `turns.ts`), and /reset runs
 * in that same order. `append` reads the stored history again rather than trusting the
 * copy the turn started from, so an admin's /reset_user during a turn is not undone.
 *
 * Large histories are split: Deno KV refuses values over 64 KiB, and it stores a
 * string with any non-Latin-1 character at 2 bytes per UTF-16 unit. A history up to
 * {@link PART_CHARS} characters of JSON is the value of `history:{id}` itself; a larger
 * one is written as parts `history:{id}:{generation}:{n}` first, then `history:{id}`
 * becomes a pointer to them, then the previous generation's parts are deleted. A reader
 * that meets a missing part reads an empty history (a part expired a moment before
 * its pointer, or a write was interrupted).
 */
import type { Store } from "../store/store.ts";
import { keys } from "../store/keys.ts";
import { HISTORY_READ_MAX, type HistoryMessage } from "./assistant.ts";

/** One stored message; `at` in ms since the epoch. */
export interface StoredMessage {
  role: "user" | "assistant";
  text: string;
  at: number;
}

export interface HistoryOptions {
  store: Store;
  /** The bound of what is kept, in estimated tokens (`HISTORY_MAX_TOKENS`). */
  maxTokens: number;
  /** Seconds a history lives after its last write (`HISTORY_TTL_DAYS`). */
  ttlSeconds: number;
  /** The clock, for tests. */
  now?: () => number;
}

/** A user's history in the store. Every method may reject when the store does. */
export interface History {
  /** The stored messages, oldest first; `[]` when none. */
  load(userId: number): Promise<StoredMessage[]>;
  /** Adds one turn (the user's text and the answer as shown), then trims and saves. */
  append(userId: number, userText: string, answerText: string): Promise<void>;
  /** Deletes the user's history. */
  clear(userId: number): Promise<void>;
}

/** The longest JSON string stored under one key (well inside Deno KV's 64 KiB). */
export const PART_CHARS = 24_000;

const encoder = new TextEncoder();

/**
 * A rough token count: UTF-8 bytes ÷ 4, rounded up. About right for English with
 * OpenAI's tokenizers (≈ 4 characters a token) and for Cyrillic (2 bytes a letter,
 * ≈ 2 letters a token); servers with other tokenizers differ, so bounds should keep a
 * margin below the model's context window.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(encoder.encode(text).length / 4);
}

/** Drops the oldest turns (user + assistant pairs) until the rest fits `maxTokens`. */
export function trimHistory(messages: StoredMessage[], maxTokens: number): StoredMessage[] {
  let total = messages.reduce((sum, m) => sum + estimateTokens(m.text), 0);
  let start = 0;
  while (start < messages.length && total > maxTokens) {
    // Drop a whole turn: the message and, when it is the user's, the answer after it.
    const end = messages[start].role === "user" && messages[start + 1]?.role === "assistant"
      ? start + 2
      : start + 1;
    for (let i = start; i < end; i++) total -= estimateTokens(messages[i].text);
    start = end;
  }
  return messages.slice(start);
}

/**
 * Stored messages as the Assistant interface's history: the last `limit` (all when
 * omitted), at most {@link HISTORY_READ_MAX}.
 */
export function toHistory(messages: StoredMessage[], limit?: number): HistoryMessage[] {
  const last = messages.slice(-Math.min(limit ?? HISTORY_READ_MAX, HISTORY_READ_MAX));
  return last.map((m) => ({ role: m.role, text: m.text, at: new Date(m.at) }));
}

interface Pointer {
  gen: string;
  parts: number;
}

/** Splits `text` into pieces of at most `size` UTF-16 units, never inside a surrogate pair. */
function split(text: string, size: number): string[] {
  const parts: string[] = [];
  for (let i = 0; i < text.length;) {
    let end = Math.min(i + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(text.slice(i, end));
    i = end;
  }
  return parts;
}

function isMessage(value: unknown): value is StoredMessage {
  const m = value as StoredMessage;
  return typeof m === "object" && m !== null &&
    (m.role === "user" || m.role === "assistant") && typeof m.text === "string" &&
    typeof m.at === "number";
}

function isPointer(value: unknown): value is Pointer {
  const p = value as Pointer;
  return typeof p === "object" && p !== null && typeof p.gen === "string" &&
    Number.isInteger(p.parts) && p.parts >= 1 && p.parts <= 1000;
}

/** Creates the store-backed history. */
export function createHistory(options: HistoryOptions): History {
  const { store, maxTokens, ttlSeconds } = options;
  const now = options.now ?? Date.now;

  function parse(raw: string | null): unknown {
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return undefined; // Not ours, or damaged: read as no history.
    }
  }

  /** The head value (messages or a pointer) and the messages it stands for. */
  async function read(userId: number): Promise<{ pointer?: Pointer; messages: StoredMessage[] }> {
    const head = parse(await store.get(keys.history(userId)));
    if (Array.isArray(head)) return { messages: head.filter(isMessage) };
    if (!isPointer(head)) return { messages: [] };
    const pointer = head;
    const parts = await Promise.all(
      Array.from(
        { length: pointer.parts },
        (_, n) => store.get(keys.historyPart(userId, pointer.gen, n)),
      ),
    );
    if (parts.some((p) => p === null)) return { pointer, messages: [] };
    const value = parse(parts.join(""));
    return { pointer, messages: Array.isArray(value) ? value.filter(isMessage) : [] };
  }

  async function deleteParts(userId: number, pointer: Pointer | undefined): Promise<void> {
    if (!pointer) return;
    await Promise.all(
      Array.from(
        { length: pointer.parts },
        (_, n) => store.delete(keys.historyPart(userId, pointer.gen, n)),
      ),
    );
  }

  async function write(userId: number, messages: StoredMessage[]): Promise<void> {
    const json = JSON.stringify(messages);
    if (messages.length === 0) {
      await store.delete(keys.history(userId));
    } else if (json.length <= PART_CHARS) {
      await store.set(keys.history(userId), json, ttlSeconds);
    } else {
      const pieces = split(json, PART_CHARS);
      const pointer: Pointer = { gen: crypto.randomUUID().slice(0, 8), parts: pieces.length };
      await Promise.all(
        pieces.map((piece, n) =>
          store.set(keys.historyPart(userId, pointer.gen, n), piece, ttlSeconds)
        ),
      );
      await store.set(keys.history(userId), JSON.stringify(pointer), ttlSeconds);
    }
  }

  async function load(userId: number): Promise<StoredMessage[]> {
    return (await read(userId)).messages;
  }

  async function append(userId: number, userText: string, answerText: string): Promise<void> {
    const at = now();
    const { pointer, messages } = await read(userId);
    messages.push({ role: "user", text: userText, at }, {
      role: "assistant",
      text: answerText,
      at,
    });
    await write(userId, trimHistory(messages, maxTokens));
    await deleteParts(userId, pointer);
  }

  async function clear(userId: number): Promise<void> {
    const head = parse(await store.get(keys.history(userId)));
    await store.delete(keys.history(userId));
    if (isPointer(head)) await deleteParts(userId, head);
  }

  return { load, append, clear };
}
