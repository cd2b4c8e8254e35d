/**
 * The chat handler: a subscriber's text goes to the assistant, and the answer streams
 * back as it is written (`stream.ts`: drafts with Telegram's stop button, or one
 * edited message where drafts are refused), then lands as the final message(s)
 * (`deliver.ts`: rich → HTML → plain). One turn per user at a time is guaranteed by
 * the turn middleware in front of it (`bot.ts`), so a message sent while an answer
 * is being written waits and is answered after, in order.
 *
 * The stop button and /cancel (`cancel.ts`) abort the assistant call through the
 * AbortSignal registered here; what was generated so far becomes the final message,
 * marked as stopped, and the turn ends.
 *
 * Every accepted message gets exactly one answer or one clear, localized error.
 */
import { Composer } from "grammy";
import type { Logger } from "@logtape/logtape";
import { type Answer, type Assistant, AssistantError } from "../assistant/assistant.ts";
import type { AnswerRegistry } from "./cancel.ts";
import type { BotContext } from "./context.ts";
import type { ApiSupport, ReplyFormat } from "./deliver.ts";
import { AnswerStream, draftIdFor, type StreamTiming } from "./stream.ts";
import type { Operator } from "./bot.ts";
import { operatorTexts } from "./limit_texts.ts";
import { langOf } from "./texts.ts";

export interface ChatOptions {
  assistant: Assistant;
  log: Logger;
  /** Where the reply format chain starts (`REPLY_FORMAT`). */
  format: ReplyFormat;
  /** The process's memory of Bot API methods the server lacks. */
  support: ApiSupport;
  /** Running answers, for the stop button and /cancel. */
  running: AnswerRegistry;
  /** Preview pacing (tests); the defaults of `stream.ts` otherwise. */
  timing?: Partial<StreamTiming>;
  /** Usage limits, statistics and metrics. */
  operator: Pick<Operator, "usage" | "stats" | "metrics">;
}

/** The final Markdown for an answer: its text plus a note when it was cut short or stopped. */
export function finalText(answer: Answer, texts: BotContext["texts"]): string {
  const text = answer.text.trim() ? answer.text.trimEnd() : "";
  if (answer.status === "aborted") return text ? `${text}\n\n${texts.stopped}` : texts.stopped;
  const body = text || texts.emptyAnswer;
  return answer.status === "incomplete" ? `${body}\n\n${texts.incomplete}` : body;
}

/** Handles private text messages (commands excluded) and other private messages. */
export function createChat(options: ChatOptions): Composer<BotContext> {
  const { assistant, log } = options;
  const { usage, stats, metrics } = options.operator;
  const composer = new Composer<BotContext>();
  const privateChats = composer.chatType("private");

  privateChats.on("message:text", async (ctx) => {
    const userId = ctx.from.id;
    const started = performance.now();
    const replyTo = { message_id: ctx.message.message_id, allow_sending_without_reply: true };
    let refusal;
    try {
      refusal = await usage.admit(userId, ctx.message.text);
    } catch (error) {
      // Counting must not cost an answer: admit, and say why limits may be off.
      log.warning("Usage limits not checked for {userId}: {error}", { userId, error });
    }
    if (refusal) {
      metrics.answers.inc({ outcome: "refused" });
      log.info("Refused {userId}: {limit} limit ({max})", { userId, ...refusal });
      const texts = operatorTexts(langOf(ctx.from.language_code));
      await ctx.reply(texts.refusal(refusal), { reply_parameters: replyTo });
      return;
    }
    const running = options.running.begin(userId);
    let firstTokenAt: number | undefined;
    let answeredAt = 0;
    ctx.chatAction = "typing";
    const stream = new AnswerStream({
      api: ctx.api,
      chatId: ctx.chat.id,
      draftId: draftIdFor(ctx.message.message_id),
      replyTo: ctx.message.message_id,
      format: options.format,
      support: options.support,
      log,
      onDraftId: running.addDraft,
      // The preview is there: "typing…" would only repeat it.
      onFirstText: () => ctx.chatAction = null,
      timing: options.timing,
    });
    try {
      stream.start();
      const askedAt = performance.now();
      let answer: Answer;
      try {
        const turn = assistant.ask(userId, ctx.message.text, running.signal);
        let step = await turn.next();
        while (!step.done) {
          firstTokenAt ??= performance.now();
          stream.push(step.value);
          step = await turn.next();
        }
        answer = step.value;
        answeredAt = performance.now();
      } catch (error) {
        await stream.abandon();
        const kind = error instanceof AssistantError ? error.kind : "failed";
        log.error("Answer for {userId} failed ({kind}): {error}", { userId, kind, error });
        metrics.answers.inc({ outcome: "failed" });
        metrics.errors.inc({ kind: `openai_${kind}` });
        await Promise.all([
          usage.finish(userId, { answered: false }).catch(() => {}),
          stats.count("errors_openai"),
        ]);
        await ctx.reply(ctx.texts[kind], { reply_parameters: replyTo });
        return;
      }
      const sent = await stream.finish(finalText(answer, ctx.texts));
      const tokensIn = answer.usage?.inputTokens ?? 0;
      const tokensOut = answer.usage?.outputTokens ?? 0;
      metrics.answers.inc({ outcome: answer.status });
      metrics.openaiLatency.observe((answeredAt - askedAt) / 1000);
      if (firstTokenAt !== undefined) {
        metrics.timeToFirstToken.observe((firstTokenAt - askedAt) / 1000);
      }
      metrics.tokens.inc({ direction: "in" }, tokensIn);
      metrics.tokens.inc({ direction: "out" }, tokensOut);
      await Promise.all([
        usage.finish(userId, { answered: true, tokens: tokensIn + tokensOut }).catch((error) =>
          log.warning("Usage of {userId} not recorded: {error}", { userId, error })
        ),
        stats.count("answers"),
        stats.count("tokens_in", tokensIn),
        stats.count("tokens_out", tokensOut),
      ]);
      log.info(
        "Answered {userId} ({status}): {chars} chars in {messages} {format} message(s), " +
          "{mode} previews, first text {firstTextMs} ms after the first token, {ms} ms in all, " +
          "tokens in/out {tokensIn}/{tokensOut}",
        {
          userId,
          status: answer.status,
          chars: answer.text.length,
          messages: sent.messages.length,
          format: sent.format,
          mode: stream.mode,
          firstTextMs: stream.firstTextMs === undefined ? "-" : Math.round(stream.firstTextMs),
          ms: Math.round(performance.now() - started),
          tokensIn,
          tokensOut,
        },
      );
    } finally {
      running.end();
    }
  });

  // Stickers, photos, voice…: not understood yet, said politely; no tokens spent.
  privateChats.on("message", (ctx) => ctx.reply(ctx.texts.unsupported));

  return composer;
}
