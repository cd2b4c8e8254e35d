/**
 * The fake OpenAI's context window and compaction, for the Responses API (used by
 * `openai.ts`) and Chat Completions (`openai_chat.ts`), shaped on the `openai@7.57`
 * types and OpenAI's compaction guide:
 *
 * - **Window** (`FakeOpenAIOptions.contextWindow`, tokens counted as characters ÷ 4):
 *   a request whose rendered input passes it gets OpenAI's 400
 *   `context_length_exceeded`, before any stream opens.
 * - **Compaction** (`context_management: [{ type: "compaction", compact_threshold }]`):
 *   when the rendered input of a response passes the threshold, the server compacts
 *   first: the response's output starts with a `compaction` item
 *   (`ResponseCompactionItem`: an id and opaque `encrypted_content`), which joins the
 *   conversation with the input and the answer. Rendering a conversation starts at its
 *   latest compaction item, which stands for everything before it (the guide: items
 *   before the most recent compaction item may be dropped). The items stay listable,
 *   as a conversation's items are never removed by a response. Stateless compaction
 *   (compaction items in `input`) is not modelled: the bot never sends them.
 * - **Per-user fields**: `prompt_cache_key` (at most 64 characters) and
 *   `safety_identifier` (at most 128), checked like OpenAI does.
 */
import type OpenAI from "openai";
import { type HttpError, invalid, isObject, optional, wrongType } from "./openai.ts";

type Json = Record<string, unknown>;
export type CompactionItem = OpenAI.Responses.ResponseCompactionItem;

/** `context_management`'s compaction threshold; undefined when absent or null. */
export function readCompactThreshold(body: Json): number | undefined {
  const value = body.context_management;
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw wrongType("context_management", "an array", value);
  let threshold: number | undefined;
  value.forEach((entry, i) => {
    const at = `context_management[${i}]`;
    if (!isObject(entry)) throw wrongType(at, "an object", entry);
    for (const key of Object.keys(entry)) {
      if (key !== "type" && key !== "compact_threshold") {
        throw invalid(`Unknown parameter: '${at}.${key}'.`, `${at}.${key}`, "unknown_parameter");
      }
    }
    if (entry.type !== "compaction") {
      throw invalid(
        `Invalid value: '${String(entry.type)}'. Supported values are: 'compaction'.`,
        `${at}.type`,
        "invalid_value",
      );
    }
    const t = optional(entry, "compact_threshold", "number", `${at}.`);
    if (t !== undefined && (!Number.isInteger(t) || t < 1)) {
      throw invalid(
        `Invalid '${at}.compact_threshold': expected a positive integer.`,
        `${at}.compact_threshold`,
        "invalid_value",
      );
    }
    threshold = t;
  });
  return threshold;
}

/** The items a conversation renders: from its latest compaction item on. */
export function renderedItems<T extends { type: string }>(items: readonly T[]): T[] {
  const last = items.findLastIndex((i) => i.type === "compaction");
  return last < 0 ? [...items] : items.slice(last);
}

/** A fresh compaction item; its content is opaque, like OpenAI's encrypted summary. */
export function compactionItem(): CompactionItem {
  const bytes = crypto.getRandomValues(new Uint8Array(48));
  const hex = Array.from(bytes.slice(0, 24), (b) => b.toString(16).padStart(2, "0")).join("");
  return {
    id: `cmp_${hex}`,
    type: "compaction",
    encrypted_content: `gAAAAA${btoa(String.fromCharCode(...bytes))}`,
  };
}

/** OpenAI's 400 for an input past the model's context window. */
export function contextLengthExceeded(
  api: "responses" | "chat",
  window: number,
  tokens: number,
): HttpError {
  return api === "responses"
    ? invalid(
      "Your input exceeds the context window of this model. Please adjust your input and try " +
        "again.",
      "input",
      "context_length_exceeded",
    )
    : invalid(
      `This model's maximum context length is ${window} tokens. However, your messages ` +
        `resulted in ${tokens} tokens. Please reduce the length of the messages.`,
      "messages",
      "context_length_exceeded",
    );
}

/** `prompt_cache_key` and `safety_identifier`, checked; null when absent. */
export function readUserFields(
  body: Json,
): { prompt_cache_key: string | null; safety_identifier: string | null } {
  const fields = { prompt_cache_key: 64, safety_identifier: 128 };
  const out = { prompt_cache_key: null as string | null, safety_identifier: null as string | null };
  for (const [name, max] of Object.entries(fields) as [keyof typeof fields, number][]) {
    const value = optional(body, name, "string");
    if (value !== undefined && value.length > max) {
      throw invalid(
        `Invalid '${name}': string too long. Expected a string with maximum length ${max}, but ` +
          `got a string with length ${value.length} instead.`,
        name,
        "string_above_max_length",
      );
    }
    out[name] = value ?? null;
  }
  return out;
}

/** Cuts deltas to `max` output tokens; `cut` when something was left out. */
export function limitOutput(
  deltas: string[],
  max: number | undefined,
  countTokens: (text: string) => number,
): { deltas: string[]; cut: boolean } {
  if (max === undefined) return { deltas, cut: false };
  const kept: string[] = [];
  let text = "";
  for (const delta of deltas) {
    if (countTokens(text + delta) > max) {
      const room = max * 4 - text.length;
      if (room > 0) kept.push(delta.slice(0, room));
      return { deltas: kept, cut: true };
    }
    kept.push(delta);
    text += delta;
  }
  return { deltas: kept, cut: false };
}
