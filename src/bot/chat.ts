/**
 * The chat handler: one straight path for each message a subscriber writes.
 *
 * 1. **admit**: the usage limits decide (the ledger records the decision);
 * 2. **input**: a text is the input as it is; a voice note, photo, file or album is
 *    checked from the update (kind, size: refused before any download), then
 *    downloaded and transcribed by the media step (`src/media/`). A transcript is
 *    quoted (`> 🎤 …`) above the answer, in the preview and the final message;
 * 3. **ask**: the input goes to the assistant, which streams text deltas;
 * 4. **preview**: the deltas go to the preview (`preview.ts`), which only shows them;
 * 5. **deliver**: one step persists the final message(s) (`deliver.ts`), whatever the
 *    preview mode was;
 * 6. **settle**: the ledger (`ledger.ts`) settles usage, metrics, /stats and the log
 *    line once, in a `finally`, for every outcome.
 *
 * One turn per user at a time is guaranteed by the turn middleware in front of it
 * (`bot.ts`), so a message sent while an answer is being written waits and is answered
 * after, in order. An album's parts are gathered and answered once (`media/album.ts`).
 * The stop button and /cancel (`cancel.ts`) abort the assistant call
 * through the AbortSignal registered here; what was generated so far becomes the final
 * message, marked as stopped.
 *
 * Every accepted message gets exactly one answer or one clear, localized error.
 */
import { Composer } from "grammy";
import type { Message } from "grammy/types";
import type { Logger } from "@logtape/logtape";
import {
  type Answer,
  type Assistant,
  AssistantError,
  textInput,
  type UserInput,
} from "../assistant/assistant.ts";
import type { AnswerRegistry } from "./cancel.ts";
import type { BotContext } from "./context.ts";
import { type ApiSupport, deliverAnswer, type ReplyFormat } from "./deliver.ts";
import { draftIdFor, Preview, type PreviewTiming } from "./preview.ts";
import type { AnswerEntry, Ledger } from "../ledger.ts";
import { operatorTexts } from "./limit_texts.ts";
import { langOf, type Texts } from "./texts.ts";
import type { Media } from "../media/media.ts";
import type { AlbumBatch } from "../media/album.ts";
import { MB, type MediaRefusal, planMedia } from "../media/classify.ts";
import { MediaError } from "../media/errors.ts";

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
  /** Voice notes, photos and files (`src/media/`). */
  media: Media;
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

/** Markdown-escapes a user's words so they show as written inside the answer's Markdown. */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_[\]<>~|]/g, "\\$&")
    .replace(/^(\s*)([#>+-])/gm, "$1\\$2")
    .replace(/^(\s*\d+)([.)])/gm, "$1\\$2");
}

/**
 * What was understood from voice: each transcript quoted (`> 🎤 …`) above the answer,
 * so the user sees what the assistant answered to.
 */
export function transcriptQuote(transcripts: string[]): string {
  if (transcripts.length === 0) return "";
  const quoted = transcripts.map((t) =>
    escapeMarkdown(`🎤 ${t.trim()}`).split("\n").map((line) => `> ${line}`).join("\n")
  );
  return `${quoted.join("\n>\n")}\n\n`;
}

/** The user's text for a message refused before anything was downloaded. */
export function refusalText(refusal: MediaRefusal, texts: Texts): string {
  switch (refusal.reason) {
    case "unsupported":
      return texts.unsupported;
    case "video":
      return texts.media.video;
    case "fileType":
      return texts.media.fileType(refusal.name);
    case "tooBig":
      return texts.media.tooBig(refusal.size / MB, refusal.maxBytes / MB);
  }
}

/** The user's text for media that could not be turned into input. */
export function mediaFailureText(error: MediaError, texts: Texts): string {
  switch (error.kind) {
    case "tooBig":
      return texts.media.tooBig(
        error.sizes.size === undefined ? undefined : error.sizes.size / MB,
        (error.sizes.maxBytes ?? 0) / MB,
      );
    case "download":
      return texts.media.download;
    case "fileType":
      return texts.media.imageType;
    case "transcription":
      return texts.media.transcription;
    case "emptyTranscript":
      return texts.media.emptyTranscript;
    case "rateLimited":
    case "unavailable":
      return texts[error.kind];
    case "stopped":
      return texts.stopped;
  }
}

/** What an admitted message becomes before the assistant is asked. */
type Prepare = (
  signal: AbortSignal,
  entry: AnswerEntry,
) => Promise<{ input: UserInput; quote?: string }>;

/**
 * Handles private messages (commands excluded): text, and voice notes, audio, video
 * notes, photos, albums and documents through the media step (`src/media/`).
 */
export function createChat(options: ChatOptions): Composer<BotContext> {
  const { assistant, ledger, replies, media, log } = options;
  const composer = new Composer<BotContext>();
  const privateChats = composer.chatType("private");

  /** Steps 2–4 for an admitted message (preparing media first). */
  async function answer(
    ctx: BotContext & { chat: { id: number } },
    messageId: number,
    entry: AnswerEntry,
    prepare: Prepare,
  ) {
    const userId = ctx.from!.id;
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
      // Started before downloads and transcription: the stop button works from here.
      preview.start();
      let prepared: Awaited<ReturnType<Prepare>>;
      try {
        prepared = await prepare(running.signal, entry);
      } catch (error) {
        await preview.stop();
        if (!(error instanceof MediaError)) throw error;
        entry.failed(error.kind, error, "media");
        await ctx.reply(mediaFailureText(error, ctx.texts), {
          reply_parameters: replyTo(messageId),
        });
        return;
      }
      const quote = prepared.quote ?? "";
      if (quote) preview.push(quote);
      let result: Answer;
      try {
        entry.asked();
        const turn = assistant.ask(userId, prepared.input, running.signal);
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
      const sent = await deliverAnswer(
        ctx.api,
        ctx.chat.id,
        quote + finalText(result, ctx.texts),
        {
          replyTo: messageId,
          format: replies.format,
          support: replies.support,
          edited: shown.edited,
          log,
        },
      );
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

  /** Step 1 (admit), then the rest; the ledger settles whatever happens. */
  async function handle(
    ctx: BotContext & { chat: { id: number }; from: { id: number } },
    messageId: number,
    admit: { text: string; audioSeconds?: number },
    prepare: Prepare,
  ) {
    const entry = ledger.begin(ctx.from.id);
    try {
      const refusal = await entry.admit(admit.text, admit.audioSeconds);
      if (refusal) {
        const texts = operatorTexts(langOf(ctx.from.language_code));
        await ctx.reply(texts.refusal(refusal), { reply_parameters: replyTo(messageId) });
        return;
      }
      await answer(ctx, messageId, entry, prepare);
    } finally {
      await entry.settle();
    }
  }

  privateChats.on("message:text", async (ctx) => {
    const input = textInput(ctx.message.text);
    await handle(ctx, ctx.message.message_id, input, () => Promise.resolve({ input }));
  });

  // Voice, audio, photos, files, albums; stickers and the like get a polite refusal.
  privateChats.on("message", async (ctx) => {
    const message = ctx.message;
    let messages: Message[] = [message];
    let album: AlbumBatch | undefined;
    if (message.media_group_id) {
      album = await media.albums.gather(ctx.update.update_id, message);
      // This part was answered with the album it belongs to.
      if (!album) return;
      messages = album.messages;
    }
    try {
      const first = messages[0].message_id;
      const plan = planMedia(messages, media.limits);
      if ("reason" in plan) {
        // Refused from the update alone: nothing downloaded, no tokens spent.
        await ctx.reply(refusalText(plan, ctx.texts), { reply_parameters: replyTo(first) });
      } else {
        const admit = { text: plan.caption, audioSeconds: plan.audioSeconds };
        await handle(ctx, first, admit, async (signal, entry) => {
          const prepared = await media.prepare(
            plan,
            signal,
            (audioSeconds) => entry.media({ audioSeconds }),
          );
          entry.media({ files: plan.items.length });
          return { input: prepared.input, quote: transcriptQuote(prepared.transcripts) };
        });
      }
    } catch (error) {
      album?.release();
      throw error;
    }
    await album?.done();
  });

  return composer;
}

/** reply_parameters that answer the user's message (kept when it was deleted). */
function replyTo(messageId: number) {
  return { message_id: messageId, allow_sending_without_reply: true };
}
