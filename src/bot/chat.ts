/**
 * The chat handler: one straight path for each message a subscriber writes.
 *
 * 1. **admit**: the usage limits decide (the ledger records the decision);
 * 2. **ask**: the input goes to the assistant, which streams text deltas;
 * 3. **preview**: the deltas go to the preview (`preview.ts`), which only shows them;
 * 4. **deliver**: one step persists the final message(s) (`deliver.ts`), whatever the
 *    preview mode was;
 * 5. **settle**: the ledger (`ledger.ts`) settles usage, metrics, /stats and the log
 *    line once, in a `finally`, for every outcome.
 *
 * One turn per user at a time is guaranteed by the turn middleware in front of it
 * (`bot.ts`), so a message sent while an answer is being written waits and is answered
 * after, in order. The stop button and /cancel (`cancel.ts`) abort the assistant call
 * through the AbortSignal registered here; what was generated so far becomes the final
 * message, marked as stopped.
 *
 * Every accepted message gets exactly one answer or one clear, localized error.
 */
import { Composer } from "grammy";
import type { Logger } from "@logtape/logtape";
import { type Answer, type Assistant, AssistantError, textInput } from "../assistant/assistant.ts";
import type { AnswerRegistry } from "./cancel.ts";
import type { BotContext } from "./context.ts";
import { type ApiSupport, deliverAnswer, type ReplyFormat } from "./deliver.ts";
import { draftIdFor, Preview, type PreviewTiming } from "./preview.ts";
import type { AnswerEntry, Ledger } from "../ledger.ts";
import { operatorTexts } from "./limit_texts.ts";
import { langOf } from "./texts.ts";

/** How answers are shown and sent. */
export interface Replies {
  /** Where the reply format chain starts (`REPLY_FORMAT`). */
  format: ReplyFormat;
  /** The process's memory of Bot API methods the server lacks. */
  support: ApiSupport;
  /** Preview pacing (tests); the defaults of `preview.ts` otherwise. */
  timing?: Partial<PreviewTiming>;
}

export interface ChatOptions {
  assistant: Assistant;
  ledger: Ledger;
  replies: Replies;
  /** Running answers, for the stop button and /cancel. */
  running: AnswerRegistry;
  log: Logger;
}

/** The final Markdown for an answer: its text plus a note when it was cut short or stopped. */
export function finalText(answer: Answer, texts: BotContext["texts"]): string {
  const text = answer.text.trim() ? answer.text.trimEnd() : "";
  if (answer.status === "aborted") return text ? `${text}\n\n${texts.stopped}` : texts.stopped;
  const body = text || texts.emptyAnswer;
  if (answer.status !== "incomplete") return body;
  return `${body}\n\n${answer.stalled ? texts.stalledNote : texts.incomplete}`;
}

/** Handles private text messages (commands excluded) and other private messages. */
export function createChat(options: ChatOptions): Composer<BotContext> {
  const { assistant, ledger, replies, log } = options;
  const composer = new Composer<BotContext>();
  const privateChats = composer.chatType("private");

  /** Steps 2–4 for an admitted message. */
  async function answer(
    ctx: BotContext & { chat: { id: number } },
    text: string,
    entry: AnswerEntry,
  ) {
    const userId = ctx.from!.id;
    const messageId = ctx.message!.message_id;
    const running = options.running.begin(userId);
    ctx.chatAction = "typing";
    const preview = new Preview({
      api: ctx.api,
      chatId: ctx.chat.id,
      draftId: draftIdFor(messageId),
      replyTo: messageId,
      format: replies.format,
      support: replies.support,
      log,
      onDraftId: running.addDraft,
      // The preview is there: "typing…" would only repeat it.
      onFirstText: () => ctx.chatAction = null,
      timing: replies.timing,
    });
    try {
      preview.start();
      let result: Answer;
      try {
        entry.asked();
        const turn = assistant.ask(userId, textInput(text), running.signal);
        let step = await turn.next();
        while (!step.done) {
          entry.firstToken();
          preview.push(step.value);
          step = await turn.next();
        }
        result = step.value;
        entry.answered(result);
      } catch (error) {
        await preview.stop();
        const kind = error instanceof AssistantError ? error.kind : "failed";
        entry.failed(kind, error);
        await ctx.reply(ctx.texts[kind], { reply_parameters: replyTo(messageId) });
        return;
      }
      const shown = await preview.stop();
      const sent = await deliverAnswer(ctx.api, ctx.chat.id, finalText(result, ctx.texts), {
        replyTo: messageId,
        format: replies.format,
        support: replies.support,
        edited: shown.edited,
        log,
      });
      preview.delivered();
      // Where the bot keeps the history, the turn is stored now that the user has it.
      await result.commit?.(result.text);
      entry.delivered({
        messages: sent.messages.length,
        format: sent.format,
        mode: shown.mode,
        firstTextMs: preview.firstTextMs,
      });
    } finally {
      running.end();
    }
  }

  privateChats.on("message:text", async (ctx) => {
    const entry = ledger.begin(ctx.from.id);
    try {
      const refusal = await entry.admit(ctx.message.text);
      if (refusal) {
        const texts = operatorTexts(langOf(ctx.from.language_code));
        await ctx.reply(texts.refusal(refusal), {
          reply_parameters: replyTo(ctx.message.message_id),
        });
        return;
      }
      await answer(ctx, ctx.message.text, entry);
    } finally {
      await entry.settle();
    }
  });

  // Stickers, photos, voice…: not understood yet, said politely; no tokens spent.
  privateChats.on("message", (ctx) => ctx.reply(ctx.texts.unsupported));

  return composer;
}

/** reply_parameters that answer the user's message (kept when it was deleted). */
function replyTo(messageId: number) {
  return { message_id: messageId, allow_sending_without_reply: true };
}
