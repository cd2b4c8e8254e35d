/**
 * The grammY bot: its Bot API client (every call counted by the ledger, 429s and 5xx
 * waited out) and its middleware, in the order an update flows:
 *
 * error boundary (`bot.catch`) → album parts noted as they arrive (`media/album.ts`) → one
 * turn per user (`sequentialize`, then the store's
 * turn lock and done marks in `once.ts`) → texts in the user's language → the stop
 * button and /cancel (outside the turn order) → group chats pointed to the private
 * chat → `chat_member` updates keep the subscription cache true → /help, /subscribe
 * and the "Check again" button (no subscription needed) → admin commands (admins only)
 * → the access gate → commands → chat.
 *
 * `app.ts` builds every part and passes it in; nothing here reaches for a global.
 */
import { Bot, Composer, type Context } from "grammy";
import type { UserFromGetMe } from "grammy/types";
import { autoRetry } from "@grammyjs/auto-retry";
import { sequentialize } from "@grammyjs/runner";
import { autoChatAction } from "@grammyjs/auto-chat-action";
import type { Logger } from "@logtape/logtape";
import type { AccessChecker } from "../access.ts";
import type { Assistant } from "../assistant/assistant.ts";
import type { BotContext } from "./context.ts";
import { createChat, type Replies } from "./chat.ts";
import { AnswerRegistry, bypassesTurn, type CancelRelay, createCancel } from "./cancel.ts";
import { createCommands } from "./commands.ts";
import { createGate } from "./gate.ts";
import { allTexts, textsFor } from "./texts.ts";
import { handleOnce, stampArrival } from "./once.ts";
import type { Store } from "../store/store.ts";
import type { TurnLock } from "../turns.ts";
import type { LimitsConfig, Usage } from "../limits.ts";
import type { Stats } from "../stats.ts";
import type { Metrics } from "../metrics.ts";
import type { Ledger } from "../ledger.ts";
import type { Inbox } from "../inbox.ts";
import { createAdmin } from "./admin.ts";
import type { Media } from "../media/media.ts";

/** The update types the bot handles (also given to getUpdates / setWebhook). */
export const ALLOWED_UPDATES = [
  "message",
  "callback_query",
  "stopped_message_generation",
  // Sent only to a bot that is an admin of the channel: joins and leaves at once.
  "chat_member",
] as const;

/** How to reach the Bot API. */
export interface TelegramSettings {
  token: string;
  apiRoot: string;
  /** Skips getMe at start (tests, or a cached value). */
  botInfo?: UserFromGetMe;
}

/**
 * Deno's own `fetch` for grammY. Under Deno, grammY loads its Node build, whose default
 * is node-fetch over Deno's Node compatibility layer (node:http): the bench measured
 * about 0.85 ms of the main thread per Bot API call that way. The Node build still
 * passes a Node `agent`, an abort-controller polyfill signal and uploads as async
 * iterables, which Deno's fetch refuses, so they are translated here.
 */
function denoFetch(url: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const { agent: _agent, compress: _compress, signal, ...rest } = init as RequestInit & {
    agent?: unknown;
    compress?: unknown;
  };
  // Uploads (an export) come as an async iterable of chunks: a stream for Deno.
  const body = rest.body as unknown;
  if (body && typeof body === "object" && Symbol.asyncIterator in body) {
    rest.body = ReadableStream.from(body as AsyncIterable<Uint8Array>);
  }
  if (!signal) return fetch(url, rest);
  const native = new AbortController();
  if (signal.aborted) native.abort(signal.reason);
  else signal.addEventListener("abort", () => native.abort(signal.reason), { once: true });
  return fetch(url, { ...rest, signal: native.signal });
}

/**
 * Creates the bot and its Bot API client: every call is counted by the ledger, and
 * Telegram's 429 (retry_after) and 5xx are waited out a bounded number of times. Add
 * the handlers with {@link botHandlers}; call `bot.init()` (getMe) before handling
 * updates.
 */
export function createBot(
  telegram: TelegramSettings,
  ledger: Ledger,
  log: Logger,
): Bot<BotContext> {
  const bot = new Bot<BotContext>(telegram.token, {
    client: { apiRoot: telegram.apiRoot, fetch: denoFetch },
    botInfo: telegram.botInfo,
  });
  // Installed first, so it sits inside auto-retry and counts every attempt.
  bot.api.config.use(async (prev, method, payload, signal) => {
    try {
      const result = await prev(method, payload, signal);
      ledger.telegramCall(method, result.ok ? "ok" : result.error_code === 429 ? "429" : "error");
      return result;
    } catch (error) {
      ledger.telegramCall(method, "error");
      throw error;
    }
  });
  bot.api.config.use(autoRetry({ maxRetryAttempts: 5, maxDelaySeconds: 300 }));
  bot.catch(({ error, ctx }) => {
    log.error("Update {updateId} failed: {error}", { updateId: ctx.update.update_id, error });
  });
  return bot;
}

/** Turn order across processes: done marks and the per-user lock in the store. */
export interface Turns {
  store: Store;
  lock: TurnLock;
  /** Carries stop/cancel between instances sharing a store (several instances only). */
  relay?: CancelRelay;
  /** Accepted updates until they are done (crash-safe). */
  inbox: Inbox;
}

/** The operator's controls: limits, statistics and admins. */
export interface Operator {
  ledger: Ledger;
  usage: Usage;
  stats: Stats;
  /** Turn waits and turns in flight. */
  metrics: Pick<Metrics, "turnWait" | "turnsInFlight">;
  adminIds: number[];
  limits: LimitsConfig;
  storeKind: string;
}

/** What the handlers are built from; `app.ts` builds each part. */
export interface BotParts {
  access: AccessChecker;
  assistant: Assistant;
  turns: Turns;
  operator: Operator;
  replies: Replies;
  /** Voice notes, photos and files. */
  media: Media;
  log: Logger;
}

/** The key that orders updates: one turn at a time per user (per chat without a user). */
export function turnKey(ctx: Context): string | undefined {
  // The stop button and /cancel must reach the running turn, not wait behind it.
  if (bypassesTurn(ctx)) return undefined;
  return ctx.from?.id.toString() ?? ctx.chat?.id.toString();
}

/** The bot's middleware, in the order of the module comment. */
export function botHandlers(parts: BotParts): Composer<BotContext> {
  const { access, assistant, turns, operator, log } = parts;
  const bot = new Composer<BotContext>();

  bot.use(stampArrival());
  // Before the turn order, so an album's parts are seen while its first part waits.
  bot.use(parts.media.albums.collect());
  bot.use(sequentialize(turnKey));
  bot.use(handleOnce({
    store: turns.store,
    lock: turns.lock,
    log,
    turnOf: turnKey,
    metrics: operator.metrics,
    inbox: turns.inbox,
  }));
  bot.use((ctx, next) => {
    ctx.texts = textsFor(ctx.from?.language_code);
    return next();
  });
  bot.use(autoChatAction());

  // Stop button and /cancel: before the gate (no check, no tokens), outside the turn order.
  const running = new AnswerRegistry(turns.relay);
  bot.use(createCancel({ running, log }));

  // Groups: only commands get an answer, pointing to the private chat; no tokens spent.
  bot.chatType(["group", "supergroup"]).on("::bot_command", async (ctx) => {
    if (!ctx.msg.text?.startsWith("/")) return;
    await ctx.reply(ctx.texts.groupOnly(ctx.me.username));
  });

  // Order matters: a chatType() composer runs where it is created, so the parts that
  // need no subscription are installed before the private-chat chain with the gate.
  bot.on("chat_member", async (ctx) => {
    await access.observe(ctx.chat, ctx.chatMember.new_chat_member);
  });

  const gate = createGate({ access, log });
  bot.use(gate.composer);
  const privateChats = bot.chatType("private");
  privateChats.command("help", (ctx) => ctx.reply(ctx.texts.help));
  privateChats.use(createAdmin({
    adminIds: operator.adminIds,
    stats: operator.stats,
    limits: operator.limits,
    assistant,
    access,
    storeKind: operator.storeKind,
    log,
  }));
  privateChats.use(gate.protect);
  privateChats.use((ctx, next) => {
    operator.stats.seen(ctx.from.id);
    return next();
  });
  privateChats.use(createCommands({ assistant, usage: operator.usage, log }));
  // An unknown command is not a question for the assistant.
  privateChats.hears(/^\/[A-Za-z0-9_]+(@\w+)?(\s|$)/, (ctx) => ctx.reply(ctx.texts.help));
  privateChats.use(createChat({
    assistant,
    ledger: operator.ledger,
    replies: parts.replies,
    running,
    media: parts.media,
    log,
  }));
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
