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
 *    visible characters without breaking a tag or a code block (`split.ts`).
 * 3. **plain**: `sendMessage` with the Markdown source as plain text, same split.
 *
 * This is the one step that persists an answer. When the preview showed it by editing
 * messages (drafts refused), those messages are edited into the final answer instead
 * (`edits.ts`), so the user never sees it twice.
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
import type { Api } from "grammy";
import type { Logger } from "@logtape/logtape";
import { richChunks, splitForTelegram } from "./split.ts";
import { isBadRequest, isMissingMethod } from "./telegram_errors.ts";
import { replyParameters, sendChunk, type SentMessage } from "./edits.ts";
import type { EditedAnswer } from "./edits.ts";
import type { ReplyFormat } from "../config.ts";

/** The reply formats, best first: Telegram rich messages, classic HTML entities, plain text. */
export type { ReplyFormat };

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
  /**
   * The messages the preview already showed in edit mode: they are completed in
   * place (edited into the final answer) instead of sending the answer anew.
   */
  edited?: EditedAnswer;
  log?: Logger;
}

/** The first format of the chain at or after `format` that the server is not known to lack. */
function usableFormat(format: ReplyFormat, support: ApiSupport): ReplyFormat {
  return format === "rich" && support.isMissing("sendRichMessage") ? "html" : format;
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
  const { edited } = options;
  if (edited && edited.messages.length > 0) {
    await edited.finish(markdown);
    return { messages: edited.messages, format: edited.plain ? "plain" : "html" };
  }
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
            { description: error.description },
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
    const sent = await sendChunk(api, chatId, chunk, format === "html", replyTo());
    messages.push(sent.message);
  }
  return { messages, format };
}
