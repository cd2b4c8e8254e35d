/**
 * Reply delivery: an answer in the assistant's Markdown goes out as Telegram HTML,
 * split into messages of at most 4096 characters at block boundaries
 * (`format.ts`). A chunk whose HTML Telegram rejects ("can't parse entities") is
 * re-sent as the same text without formatting, so no text is ever lost.
 *
 * Bot API calls: one `sendMessage` per chunk (HTML), plus one plain `sendMessage`
 * for each chunk Telegram refused to parse. 429s are waited out by the auto-retry
 * plugin installed on the API.
 */
import { type Api, GrammyError } from "grammy";
import type { Message } from "grammy/types";
import { splitForTelegram } from "./format.ts";

export interface DeliverOptions {
  /** The first message answers this one (kept when it was deleted). */
  replyTo?: number;
}

/** Whether Telegram refused a message's formatting (not its length or its chat). */
export function isEntityError(error: unknown): boolean {
  return error instanceof GrammyError && error.error_code === 400 &&
    /can't parse entities|unsupported start tag|can't find end tag/i.test(error.description);
}

/** Sends a Markdown answer to a chat; resolves with the messages sent, in order. */
export async function deliverAnswer(
  api: Api,
  chatId: number,
  markdown: string,
  options: DeliverOptions = {},
): Promise<Message.TextMessage[]> {
  const sent: Message.TextMessage[] = [];
  for (const chunk of splitForTelegram(markdown)) {
    const reply_parameters = sent.length === 0 && options.replyTo
      ? { message_id: options.replyTo, allow_sending_without_reply: true }
      : undefined;
    try {
      sent.push(
        await api.sendMessage(chatId, chunk.html, {
          parse_mode: "HTML",
          reply_parameters,
          link_preview_options: { is_disabled: true },
        }),
      );
    } catch (error) {
      if (!isEntityError(error)) throw error;
      sent.push(await api.sendMessage(chatId, chunk.text, { reply_parameters }));
    }
  }
  return sent;
}
