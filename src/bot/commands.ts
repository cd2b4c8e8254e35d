/**
 * The subscriber commands: /start, /usage, /reset, /history, /export (/help and /subscribe
 * need no subscription and live in `bot.ts` and `gate.ts`). The texts of a
 * conversation are read back from the assistant backend; exports are built in memory
 * and sent with sendDocument, never written to disk.
 */
import { Composer, InputFile } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { Assistant, HistoryMessage } from "../assistant/assistant.ts";
import { AssistantError } from "../assistant/assistant.ts";
import type { BotContext } from "./context.ts";
import { escapeHtml } from "./render.ts";
import { langOf, type Texts } from "./texts.ts";
import type { Usage } from "../limits.ts";
import { operatorTexts } from "./limit_texts.ts";

const HISTORY_LIMIT = 10;
const HISTORY_ITEM_CHARS = 600;

function clip(text: string, max: number): string {
  const chars = [...text.trim()];
  return chars.length <= max ? chars.join("") : chars.slice(0, max - 1).join("") + "…";
}

/** The /history message (HTML), newest last, within Telegram's 4096 characters. */
export function formatHistory(messages: HistoryMessage[], texts: Texts): string {
  const lines = messages.map((m) =>
    `<b>${m.role === "user" ? `👤 ${texts.you}` : `🤖 ${texts.assistant}`}:</b> ${
      escapeHtml(clip(m.text, HISTORY_ITEM_CHARS))
    }`
  );
  // Drop the oldest lines until the whole fits (600 chars × 10 can exceed 4096).
  while (lines.length > 1 && lines.join("\n\n").length > 3900) lines.shift();
  return `<b>${escapeHtml(texts.historyTitle)}</b>\n\n${lines.join("\n\n")}`;
}

/** An export document: plain text or Markdown, with the date in the title. */
export function formatExport(
  messages: HistoryMessage[],
  texts: Texts,
  format: "txt" | "md",
  now: Date,
): { name: string; content: string } {
  const date = now.toISOString().slice(0, 10);
  const who = (m: HistoryMessage) => m.role === "user" ? texts.you : texts.assistant;
  const when = (m: HistoryMessage) =>
    m.at ? ` (${m.at.toISOString().slice(0, 16).replace("T", " ")} UTC)` : "";
  const body = format === "md"
    ? `# ${texts.exportTitle}, ${date}\n\n` +
      messages.map((m) => `## ${who(m)}${when(m)}\n\n${m.text.trim()}\n`).join("\n")
    : `${texts.exportTitle}, ${date}\n\n` +
      messages.map((m) => `${who(m)}${when(m)}:\n${m.text.trim()}\n`).join("\n");
  return { name: `conversation-${date}.${format}`, content: body };
}

export interface CommandOptions {
  assistant: Assistant;
  usage: Usage;
  log: Logger;
  now?: () => Date;
}

/** The commands that need access; the caller puts the gate in front of them. */
export function createCommands(options: CommandOptions): Composer<BotContext> {
  const { assistant, log } = options;
  const now = options.now ?? (() => new Date());
  const composer = new Composer<BotContext>();

  async function readHistory(ctx: BotContext, limit?: number) {
    try {
      return await assistant.history(ctx.from!.id, limit);
    } catch (error) {
      log.error("Reading the conversation of {userId} failed: {error}", {
        userId: ctx.from!.id,
        error,
      });
      const kind = error instanceof AssistantError ? error.kind : "failed";
      await ctx.reply(ctx.texts[kind]);
      return undefined;
    }
  }

  composer.command("start", (ctx) => ctx.reply(ctx.texts.welcome));

  composer.command("usage", async (ctx) => {
    const report = await options.usage.report(ctx.from!.id);
    await ctx.reply(operatorTexts(langOf(ctx.from?.language_code)).usage(report));
  });

  composer.command("reset", async (ctx) => {
    await assistant.reset(ctx.from!.id);
    await ctx.reply(ctx.texts.reset);
  });

  composer.command("history", async (ctx) => {
    ctx.chatAction = "typing";
    const messages = await readHistory(ctx, HISTORY_LIMIT);
    if (!messages) return;
    if (messages.length === 0) return void await ctx.reply(ctx.texts.historyEmpty);
    await ctx.reply(formatHistory(messages, ctx.texts), { parse_mode: "HTML" });
  });

  composer.command("export", async (ctx) => {
    ctx.chatAction = "upload_document";
    const format = /^\s*(md|markdown)\s*$/i.test(ctx.match) ? "md" : "txt";
    const messages = await readHistory(ctx);
    if (!messages) return;
    if (messages.length === 0) return void await ctx.reply(ctx.texts.exportEmpty);
    const { name, content } = formatExport(messages, ctx.texts, format, now());
    await ctx.replyWithDocument(new InputFile(new TextEncoder().encode(content), name), {
      caption: ctx.texts.exportCaption,
    });
  });

  return composer;
}
