/**
 * Final delivery of an answer (the assistant's Markdown) as persisted messages, with a
 * fallback chain decided per answer:
 *
 * 1. **rich** (Bot API 10.1): `sendRichMessage` with the Markdown itself in
 *    `rich_message.markdown`, so Telegram renders headings, lists, tables, code and
 *    formulas. Up to 32768 characters and 500 blocks a message; a longer answer is
 *    split at block boundaries (`splitForTelegram` with that limit; a code block cut in
 *    two is closed and reopened).
 * 2. **html**: `sendMessage` with the Markdown converted to Telegram HTML, split at 4096
 *    visible characters without breaking a tag or a code block (`format.ts`).
 * 3. **plain**: `sendMessage` with the Markdown source as plain text, same split.
 *
 * The chain starts at the configured format (`REPLY_FORMAT`). A method that answers
 * 404 (an older local Bot API server) is remembered in {@link ApiSupport} for the rest
 * of the process and skipped from then on. Any other 400 for a rich message (content
 * Telegram would not take as a rich message) moves the rest of that answer one step
 * down, and the next answer tries rich again. An HTML chunk Telegram cannot parse is
 * re-sent as plain text. Nothing the assistant wrote is dropped.
 *
 * Bot API calls for one answer, in order:
 * - rich: `sendRichMessage` per part (one for nearly every answer);
 * - after a rich 404 or 400: `sendMessage` (parse_mode HTML) for each 4096 chunk of
 *   the part not yet sent;
 * - per HTML chunk refused with "can't parse entities": one more plain `sendMessage`.
 * Only the first message replies to the user's message. 429s are waited out by the
 * auto-retry plugin installed on the API.
 */
import { type Api, GrammyError } from "grammy";
import type { Message } from "grammy/types";
import type { Logger } from "@logtape/logtape";
import type { MarkedToken, Token } from "marked";
import { type Chunk, lex, splitForTelegram } from "./format.ts";

import type { ReplyFormat } from "../config.ts";

/** The reply formats, best first: Telegram rich messages, classic HTML entities, plain text. */
export type { ReplyFormat };

/** Telegram's limit for a rich message's text (Bot API 10.1). */
export const RICH_TEXT_LIMIT = 32768;

/**
 * What this process has learned about the Bot API server: methods it answered with
 * 404 ("Not Found", an older local Bot API server). Shared by every answer, never
 * forgotten until restart (a server upgrade comes with a restart of ours in practice).
 */
export class ApiSupport {
  #missing = new Set<string>();

  constructor(private readonly log?: Logger) {}

  /** Whether `method` answered 404 before. */
  isMissing(method: string): boolean {
    return this.#missing.has(method);
  }

  /** Remembers that `method` is missing; logs once. */
  markMissing(method: string): void {
    if (this.#missing.has(method)) return;
    this.#missing.add(method);
    this.log?.warning(
      "The Bot API server has no {method} (404); falling back for the rest of this process",
      { method },
    );
  }
}

/** Whether the error is the Bot API's 404 for a method it does not have. */
export function isMissingMethod(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 404;
}

/** Whether Telegram refused the request's content (400 Bad Request). */
export function isBadRequest(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 400;
}

/** Whether Telegram refused a message's formatting (not its length or its chat). */
export function isEntityError(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 400 &&
    /can't parse entities|unsupported start tag|can't find end tag/i.test(error.description);
}

/** Whether an edit changed nothing (Telegram refuses it; the message already shows it). */
export function isNotModified(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 400 &&
    /message is not modified/i.test(error.description);
}

/**
 * Blocks a rich message may hold. Telegram allows 500, counting nested blocks, list
 * items and table rows; the margin covers what Telegram counts that we do not (a
 * footnote, an HTML block).
 */
export const RICH_BLOCK_BUDGET = 450;

function countBlocks(tokens: Token[]): number {
  let n = 0;
  for (const token of tokens) {
    const t = token as MarkedToken;
    if (t.type === "space" || t.type === "def") continue;
    n++;
    if (t.type === "list") {
      for (const item of t.items) n += 1 + countBlocks(item.tokens);
    } else if (t.type === "table") n += 1 + t.rows.length;
    else if (t.type === "blockquote") n += countBlocks(t.tokens);
  }
  return n;
}

/** About how many blocks Telegram makes of this Markdown (see {@link RICH_BLOCK_BUDGET}). */
export function richBlockCount(markdown: string): number {
  try {
    return countBlocks(lex(markdown));
  } catch {
    return 1;
  }
}

/**
 * The Markdown parts of an answer for rich messages: each at most
 * {@link RICH_TEXT_LIMIT} characters and {@link RICH_BLOCK_BUDGET} blocks, split at
 * block boundaries (a part with too many short blocks is split again, smaller).
 */
export function richChunks(markdown: string, limit = RICH_TEXT_LIMIT): string[] {
  const parts: string[] = [];
  for (const { text } of splitForTelegram(markdown, limit)) {
    if (limit >= 1024 && richBlockCount(text) > RICH_BLOCK_BUDGET) {
      parts.push(...richChunks(text, Math.floor(limit / 2)));
    } else parts.push(text);
  }
  return parts;
}

/** A message of the answer as sent. */
export type SentMessage = Message.TextMessage | Message.RichMessageMessage;

/** What {@link deliverAnswer} sent. */
export interface Delivered {
  messages: SentMessage[];
  /** The format the answer ended in (the last step of the chain it used). */
  format: ReplyFormat;
}

export interface DeliverOptions {
  /** The first message answers this one (kept when it was deleted). */
  replyTo?: number;
  /** Where the chain starts; default rich. */
  format?: ReplyFormat;
  /** The process's memory of missing methods; default a fresh one. */
  support?: ApiSupport;
  log?: Logger;
}

/** The first format of the chain at or after `format` that the server is not known to lack. */
function usableFormat(format: ReplyFormat, support: ApiSupport): ReplyFormat {
  return format === "rich" && support.isMissing("sendRichMessage") ? "html" : format;
}

/** reply_parameters for the first message of an answer. */
export function replyParameters(replyTo: number | undefined) {
  return replyTo ? { message_id: replyTo, allow_sending_without_reply: true } : undefined;
}

/**
 * Sends one 4096 chunk as HTML, or as plain text when `format` is plain or Telegram
 * refuses the HTML; `plain` tells which went out.
 */
export async function sendChunk(
  api: Api,
  chatId: number,
  chunk: Chunk,
  format: "html" | "plain",
  replyTo?: number,
): Promise<{ message: Message.TextMessage; plain: boolean }> {
  const other = {
    reply_parameters: replyParameters(replyTo),
    link_preview_options: { is_disabled: true },
  };
  if (format === "html") {
    try {
      const message = await api.sendMessage(chatId, chunk.html, { ...other, parse_mode: "HTML" });
      return { message, plain: false };
    } catch (error) {
      if (!isEntityError(error)) throw error;
    }
  }
  return { message: await api.sendMessage(chatId, chunk.text, other), plain: true };
}

/**
 * Sends a Markdown answer to a chat through the fallback chain (see the module
 * comment); resolves with the messages sent, in order. An empty answer sends nothing.
 * Errors other than the ones the chain handles (a blocked bot, a lost chat) are thrown.
 */
export async function deliverAnswer(
  api: Api,
  chatId: number,
  markdown: string,
  options: DeliverOptions = {},
): Promise<Delivered> {
  const support = options.support ?? new ApiSupport(options.log);
  const messages: SentMessage[] = [];
  const replyTo = () => messages.length === 0 ? options.replyTo : undefined;
  let format = usableFormat(options.format ?? "rich", support);
  let rest = markdown;

  if (format === "rich") {
    const chunks = richChunks(markdown);
    for (let i = 0; i < chunks.length; i++) {
      try {
        messages.push(
          await api.sendRichMessage(chatId, { markdown: chunks[i] }, {
            reply_parameters: replyParameters(replyTo()),
          }),
        );
      } catch (error) {
        if (isMissingMethod(error)) support.markMissing("sendRichMessage");
        else if (isBadRequest(error)) {
          options.log?.warning(
            "Telegram refused a rich message ({description}); this answer goes out as HTML",
            { description: (error as GrammyError).description },
          );
        } else throw error;
        format = "html";
        rest = chunks.slice(i).join("\n\n");
        break;
      }
    }
    if (format === "rich") return { messages, format };
  }

  for (const chunk of splitForTelegram(rest)) {
    const sent = await sendChunk(api, chatId, chunk, format as "html" | "plain", replyTo());
    messages.push(sent.message);
  }
  return { messages, format };
}
