/**
 * Builds the grammY bot from its parts. The middleware order is the flow of
 * DESIGN.md: error boundary (`bot.catch`) → one turn per user (`sequentialize`) →
 * texts in the user's language → group chats pointed to the private chat → /help,
 * /subscribe and the "Check again" button (no subscription needed) → admin commands
 * (admins only) → the access gate → commands → chat. `chat_member` updates from the
 * channels keep the subscription cache true; every Bot API call is counted for
 * /metrics and /stats.
 */
import { type Api, Bot, type Context } from "grammy";
import type { UserFromGetMe } from "grammy/types";
import { autoRetry } from "@grammyjs/auto-retry";
import { sequentialize } from "@grammyjs/runner";
import { autoChatAction } from "@grammyjs/auto-chat-action";
import type { Logger } from "@logtape/logtape";
import type { AccessChecker } from "../access.ts";
import type { Assistant } from "../assistant/assistant.ts";
import type { BotContext } from "./context.ts";
import { createChat } from "./chat.ts";
import { AnswerRegistry, bypassesTurn, type CancelRelay, createCancel } from "./cancel.ts";
import { ApiSupport, type ReplyFormat } from "./deliver.ts";
import { createCommands } from "./commands.ts";
import { createGate } from "./gate.ts";
import { allTexts, textsFor } from "./texts.ts";
import { handleOnce, stampArrival } from "./once.ts";
import type { Store } from "../store/store.ts";
import type { TurnLock } from "../turns.ts";
import type { LimitsConfig, Usage } from "../limits.ts";
import type { Stats } from "../stats.ts";
import type { Metrics } from "../metrics.ts";
import { createAdmin } from "./admin.ts";

/** The update types the bot handles (also given to getUpdates / setWebhook). */
export const ALLOWED_UPDATES = [
  "message",
  "callback_query",
  "stopped_message_generation",
  // Sent only to a bot that is an admin of the channel: joins and leaves at once.
  "chat_member",
] as const;

/** The operator's controls: limits, statistics, metrics and admins. */
export interface Operator {
  usage: Usage;
  stats: Stats;
  metrics: Metrics;
  adminIds: number[];
  limits: LimitsConfig;
  storeKind: string;
}

export interface BotOptions {
  token: string;
  apiRoot: string;
  channels: (string | number)[];
  /** Builds the access checker on the bot's API (so getChatMember gets auto-retry). */
  access: (api: Api) => AccessChecker;
  assistant: Assistant;
  /** For the done marks of handled updates. */
  store: Store;
  /** One turn per user across processes. */
  turnLock: TurnLock;
  operator: Operator;
  /** Carries stop/cancel between instances sharing a store (several instances only). */
  cancelRelay?: CancelRelay;
  log: Logger;
  /** Skips getMe at start (tests, or a cached value). */
  botInfo?: UserFromGetMe;
  /** Where the answer format chain starts (`REPLY_FORMAT`); default rich. */
  replyFormat?: ReplyFormat;
}

/** The key that orders updates: one turn at a time per user (per chat without a user). */
export function turnKey(ctx: Context): string | undefined {
  // The stop button and /cancel must reach the running turn, not wait behind it.
  if (bypassesTurn(ctx)) return undefined;
  return ctx.from?.id.toString() ?? ctx.chat?.id.toString();
}

/** Creates the bot; call `bot.init()` (getMe) before handling updates. */
export function createBot(options: BotOptions): Bot<BotContext> {
  const { log } = options;
  const bot = new Bot<BotContext>(options.token, {
    client: { apiRoot: options.apiRoot },
    botInfo: options.botInfo,
  });
  const { metrics, stats } = options.operator;
  // Installed first, so it sits inside auto-retry and counts every attempt.
  bot.api.config.use(async (prev, method, payload, signal) => {
    metrics.telegramCalls.inc({ method });
    try {
      const result = await prev(method, payload, signal);
      if (!result.ok) {
        if (result.error_code === 429) metrics.telegram429.inc({ method });
        metrics.errors.inc({ kind: "telegram" });
        stats.count("errors_telegram");
      }
      return result;
    } catch (error) {
      metrics.errors.inc({ kind: "telegram" });
      stats.count("errors_telegram");
      throw error;
    }
  });
  // Telegram's 429 (retry_after) and 5xx are waited out, a bounded number of times.
  bot.api.config.use(autoRetry({ maxRetryAttempts: 5, maxDelaySeconds: 300 }));

  bot.use(stampArrival());
  bot.use(sequentialize(turnKey));
  bot.use(handleOnce({
    store: options.store,
    lock: options.turnLock,
    log,
    turnOf: turnKey,
    metrics,
  }));
  bot.use((ctx, next) => {
    ctx.texts = textsFor(ctx.from?.language_code);
    return next();
  });
  bot.use(autoChatAction());

  // Stop button and /cancel: before the gate (no check, no tokens), outside the turn order.
  const running = new AnswerRegistry(options.cancelRelay);
  bot.use(createCancel({ running, log }));

  // Groups: only commands get an answer, pointing to the private chat; no tokens spent.
  bot.chatType(["group", "supergroup"]).on("::bot_command", async (ctx) => {
    if (!ctx.msg.text?.startsWith("/")) return;
    await ctx.reply(ctx.texts.groupOnly(ctx.me.username));
  });

  // Order matters: a chatType() composer runs where it is created, so the parts that
  // need no subscription are installed before the private-chat chain with the gate.
  const access = options.access(bot.api);
  bot.on("chat_member", async (ctx) => {
    await access.observe(ctx.chat, ctx.chatMember.new_chat_member);
  });

  const gate = createGate({
    access,
    api: bot.api,
    channels: options.channels,
    log,
  });
  bot.use(gate.composer);
  const privateChats = bot.chatType("private");
  privateChats.command("help", (ctx) => ctx.reply(ctx.texts.help));
  privateChats.use(createAdmin({
    adminIds: options.operator.adminIds,
    stats,
    limits: options.operator.limits,
    assistant: options.assistant,
    access,
    storeKind: options.operator.storeKind,
    log,
  }));
  privateChats.use(gate.protect);
  privateChats.use((ctx, next) => {
    stats.seen(ctx.from.id);
    return next();
  });
  privateChats.use(
    createCommands({ assistant: options.assistant, usage: options.operator.usage, log }),
  );
  // An unknown command is not a question for the assistant.
  privateChats.hears(/^\/[A-Za-z0-9_]+(@\w+)?(\s|$)/, (ctx) => ctx.reply(ctx.texts.help));
  privateChats.use(createChat({
    assistant: options.assistant,
    log,
    format: options.replyFormat ?? "rich",
    support: new ApiSupport(log),
    running,
    operator: options.operator,
  }));

  bot.catch(({ error, ctx }) => {
    log.error("Update {updateId} failed: {error}", { updateId: ctx.update.update_id, error });
  });
  return bot;
}

/** Registers the command menu in English (default) and Russian; failures only warn. */
export async function registerCommands(bot: Bot<BotContext>, log: Logger): Promise<void> {
  try {
    await bot.api.setMyCommands(allTexts.en.commands);
    await bot.api.setMyCommands(allTexts.ru.commands, { language_code: "ru" });
  } catch (error) {
    log.warning("setMyCommands failed (the command menu may be stale): {error}", { error });
  }
}
