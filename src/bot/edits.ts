/**
 * An answer shown by editing messages in place: the fallback where Telegram refuses
 * drafts. The preview brings the messages to the text so far, one call at a time; the
 * delivery step brings them to the final answer. The messages are always exactly
 * `splitForTelegram(answer)`: past 4096 characters a part is completed and the answer
 * rolls over into a new message.
 *
 * Every send or edit in the chat is at least `intervalMs` after the previous one
 * (Telegram allows about one message a second per chat; answers stream in private
 * chats only, so the 20-a-minute group limit never applies). A part whose HTML
 * Telegram refuses is shown as plain text from then on; a part deleted by the user is
 * sent anew.
 */
import type { Api } from "grammy";
import type { Message } from "grammy/types";
import type { Logger } from "@logtape/logtape";
import { type Chunk, splitForTelegram } from "./split.ts";
import { isBadRequest, isEntityError, isNotModified } from "./telegram_errors.ts";
import { type Clock, systemClock } from "../clock.ts";

/** A message of the answer as sent. */
export type SentMessage = Message.TextMessage | Message.RichMessageMessage;

/** reply_parameters that answer a user's message (kept when it was deleted); none without one. */
export function replyParameters(replyTo: number | undefined) {
  return replyTo ? { message_id: replyTo, allow_sending_without_reply: true } : undefined;
}

const NO_PREVIEW = { is_disabled: true };

/**
 * Sends one 4096 chunk as HTML, or as plain text when `html` is false or Telegram
 * refuses the HTML; `plain` tells which went out.
 */
export async function sendChunk(
  api: Api,
  chatId: number,
  chunk: Chunk,
  html: boolean,
  replyTo?: number,
): Promise<{ message: Message.TextMessage; plain: boolean }> {
  const other = { reply_parameters: replyParameters(replyTo), link_preview_options: NO_PREVIEW };
  if (html) {
    try {
      const message = await api.sendMessage(chatId, chunk.html, { ...other, parse_mode: "HTML" });
      return { message, plain: false };
    } catch (error) {
      if (!isEntityError(error)) throw error;
    }
  }
  return { message: await api.sendMessage(chatId, chunk.text, other), plain: true };
}

interface Part {
  message: SentMessage;
  /** The text last sent (HTML, or plain when `plain`). */
  shown: string;
  /** Telegram refused this part's HTML once: keep it plain. */
  plain: boolean;
}

export interface EditedAnswerOptions {
  api: Api;
  chatId: number;
  /** The first message replies to this one. */
  replyTo?: number;
  /** Plain text instead of HTML for every part. */
  plain: boolean;
  /** Least time between two calls in the chat. */
  intervalMs: number;
  log?: Logger;
  /** Paces the calls (tests drive it by hand); default the system clock. */
  clock?: Clock;
}

/** The messages of one answer shown by editing; see the module comment. */
export class EditedAnswer {
  readonly #o: EditedAnswerOptions;
  readonly #clock: Clock;
  #parts: Part[] = [];
  #lastCallAt = -Infinity;

  constructor(options: EditedAnswerOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** The messages sent so far, in order. */
  get messages(): SentMessage[] {
    return this.#parts.map((p) => p.message);
  }

  /** Whether every part went out as plain text. */
  get plain(): boolean {
    return this.#o.plain || (this.#parts.length > 0 && this.#parts.every((p) => p.plain));
  }

  /** When the next call may go out (the clock's time). */
  get readyAt(): number {
    return this.#lastCallAt + this.#o.intervalMs;
  }

  /**
   * Makes one call that brings the messages closer to `markdown` (a send of a new part,
   * or an edit of the first part that differs). Resolves false when they already show
   * it. With `pace` it first waits for {@link readyAt}; without, the caller paces.
   */
  async step(markdown: string, pace = false): Promise<boolean> {
    const chunks = splitForTelegram(markdown);
    const index = chunks.findIndex((chunk, i) =>
      // Telegram trims what it shows: a change in surrounding whitespace is no change.
      i >= this.#parts.length || this.#parts[i].shown.trim() !== this.#wanted(chunk, i).text.trim()
    );
    if (index < 0) return false;
    if (pace) await this.#pace();
    this.#lastCallAt = this.#clock.now();
    await this.#call(chunks[index], index);
    return true;
  }

  /**
   * Brings the messages to the final `markdown`, paced, and deletes parts no longer
   * needed. Errors other than the ones handled here (a blocked bot) are thrown.
   */
  async finish(markdown: string): Promise<void> {
    while (await this.step(markdown, true));
    const count = Math.max(1, splitForTelegram(markdown).length);
    while (this.#parts.length > count) {
      const extra = this.#parts.pop()!;
      await this.#pace();
      this.#lastCallAt = this.#clock.now();
      await this.#o.api.deleteMessage(this.#o.chatId, extra.message.message_id).catch((error) =>
        this.#o.log?.debug("Could not delete a surplus part: {error}", { error })
      );
    }
  }

  async #pace(): Promise<void> {
    await this.#clock.sleep(this.readyAt - this.#clock.now());
  }

  #wanted(chunk: Chunk, index: number): { text: string; html: boolean } {
    const plain = this.#o.plain || (this.#parts[index]?.plain ?? false);
    return plain ? { text: chunk.text, html: false } : { text: chunk.html, html: true };
  }

  /** One send (a new part) or one edit (an existing part); HTML refused → plain text. */
  async #call(chunk: Chunk, index: number): Promise<void> {
    const part = this.#parts[index];
    if (!part) {
      this.#parts.push(await this.#send(chunk, index, !this.#o.plain));
      return;
    }
    const wanted = this.#wanted(chunk, index);
    try {
      part.message = await this.#edit(part.message.message_id, wanted.text, wanted.html);
    } catch (error) {
      if (isNotModified(error)) {
        // Already shows it.
      } else if (wanted.html && isEntityError(error)) {
        part.plain = true;
        part.shown = chunk.text;
        part.message = await this.#edit(part.message.message_id, chunk.text, false);
        return;
      } else if (isBadRequest(error)) {
        // Deleted by the user, or no longer editable: send the part anew.
        this.#parts[index] = await this.#send(chunk, index, wanted.html);
        return;
      } else throw error;
    }
    part.shown = wanted.text;
  }

  async #send(chunk: Chunk, index: number, html: boolean): Promise<Part> {
    const replyTo = index === 0 ? this.#o.replyTo : undefined;
    const { message, plain } = await sendChunk(this.#o.api, this.#o.chatId, chunk, html, replyTo);
    return { message, shown: plain ? chunk.text : chunk.html, plain };
  }

  async #edit(messageId: number, text: string, html: boolean): Promise<SentMessage> {
    const edited = await this.#o.api.editMessageText(this.#o.chatId, messageId, text, {
      ...(html ? { parse_mode: "HTML" as const } : {}),
      link_preview_options: NO_PREVIEW,
    });
    return edited as SentMessage;
  }
}
