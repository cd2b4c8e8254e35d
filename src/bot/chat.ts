/**
 * The chat handler: a subscriber's text goes to the assistant, the answer comes back
 * through {@link deliverAnswer}. One turn per user at a time is guaranteed by the
 * `sequentialize` middleware in front of it (`bot.ts`), so a message sent while an
 * answer is being generated waits and is answered after, in order.
 *
 * Every accepted message gets exactly one answer or one clear, localized error.
 */
import { Composer } from "grammy";
import type { Logger } from "@logtape/logtape";
import { type Answer, type Assistant, AssistantError } from "../assistant/assistant.ts";
import type { BotContext } from "./context.ts";
import { deliverAnswer } from "./deliver.ts";

export interface ChatOptions {
  assistant: Assistant;
  log: Logger;
}

/** Handles private text messages (commands excluded) and other private messages. */
export function createChat(options: ChatOptions): Composer<BotContext> {
  const { assistant, log } = options;
  const composer = new Composer<BotContext>();
  const privateChats = composer.chatType("private");

  privateChats.on("message:text", async (ctx) => {
    const userId = ctx.from.id;
    const started = performance.now();
    ctx.chatAction = "typing";
    let answer: Answer;
    try {
      const turn = assistant.ask(userId, ctx.message.text);
      let step = await turn.next();
      while (!step.done) step = await turn.next();
      answer = step.value;
    } catch (error) {
      const kind = error instanceof AssistantError ? error.kind : "failed";
      log.error("Answer for {userId} failed ({kind}): {error}", { userId, kind, error });
      await ctx.reply(ctx.texts[kind], {
        reply_parameters: { message_id: ctx.message.message_id, allow_sending_without_reply: true },
      });
      return;
    }
    let text = answer.text.trim() ? answer.text : ctx.texts.emptyAnswer;
    if (answer.status === "incomplete") text += `\n\n${ctx.texts.incomplete}`;
    const sent = await deliverAnswer(ctx.api, ctx.chat.id, text, {
      replyTo: ctx.message.message_id,
    });
    log.info(
      "Answered {userId}: {chars} chars in {messages} message(s), {ms} ms, tokens in/out {tokensIn}/{tokensOut}",
      {
        userId,
        chars: answer.text.length,
        messages: sent.length,
        ms: Math.round(performance.now() - started),
        tokensIn: answer.usage?.inputTokens ?? 0,
        tokensOut: answer.usage?.outputTokens ?? 0,
      },
    );
  });

  // Stickers, photos, voice…: not understood yet, said politely; no tokens spent.
  privateChats.on("message", (ctx) => ctx.reply(ctx.texts.unsupported));

  return composer;
}
