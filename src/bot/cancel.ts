/**
 * Stopping an answer while it is being written: the draft's stop button (Bot API 10.3
 * `can_stop`, which sends a `stopped_message_generation` update) and the /cancel
 * command. Both abort the running assistant call through its AbortSignal; the chat
 * handler then sends what was generated so far as the final message and the user's
 * turn ends.
 *
 * Both updates must reach the bot while the user's turn is still running, so they
 * may not wait behind it in the per-user turn ordering: {@link bypassesTurn} names
 * them, and the turn middleware lets them through unordered.
 *
 * The registry is per process: it knows the answers this process is writing.
 */
import { Composer, type Context } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { BotContext } from "./context.ts";

/** The handle of one running answer, from {@link AnswerRegistry.begin}. */
export interface RunningAnswer {
  /** Aborted when the user stops or cancels the answer. */
  readonly signal: AbortSignal;
  /** Records a draft id this answer shows, so a stop press on it is recognised. */
  addDraft(draftId: number): void;
  /** Unregisters the answer (call once its final message is out); later cancels miss it. */
  end(): void;
}

interface Entry {
  controller: AbortController;
  drafts: Set<number>;
}

/** Per-process registry of running answers: user id → the answer's AbortController. */
export class AnswerRegistry {
  #running = new Map<number, Entry>();

  /**
   * Registers a new answer for `userId`. Should one still be registered (it cannot
   * happen while turns are ordered per user), the new one replaces it; the old one's
   * `end()` then leaves the new one alone.
   */
  begin(userId: number): RunningAnswer {
    const entry: Entry = { controller: new AbortController(), drafts: new Set() };
    this.#running.set(userId, entry);
    return {
      signal: entry.controller.signal,
      addDraft: (draftId) => entry.drafts.add(draftId),
      end: () => {
        if (this.#running.get(userId) === entry) this.#running.delete(userId);
      },
    };
  }

  /** Whether an answer for `userId` is registered. */
  isRunning(userId: number): boolean {
    return this.#running.has(userId);
  }

  /**
   * Aborts the running answer of `userId`. With `draftId` (a stop button press) only
   * when that answer showed this draft, so a late press on an old draft does not stop
   * a newer answer. Returns whether an answer was aborted (false: none was running,
   * it was already aborted, or the draft is not its own).
   */
  cancel(userId: number, draftId?: number): boolean {
    const entry = this.#running.get(userId);
    if (!entry || entry.controller.signal.aborted) return false;
    if (draftId !== undefined && !entry.drafts.has(draftId)) return false;
    entry.controller.abort(new DOMException("The user stopped the answer", "AbortError"));
    return true;
  }
}

const CANCEL_RE = /^\/cancel(?:@([A-Za-z0-9_]+))?(?:\s|$)/;

/**
 * Whether the update is a /cancel command in a private chat (`/cancel`, or
 * `/cancel@thisbot`; a command addressed to another bot is not ours).
 */
export function isCancelCommand(ctx: Context): boolean {
  const message = ctx.message;
  if (!message || message.chat.type !== "private" || !message.text) return false;
  const match = CANCEL_RE.exec(message.text);
  if (!match) return false;
  const addressee = match[1];
  return addressee === undefined || addressee.toLowerCase() === ctx.me.username.toLowerCase();
}

/**
 * True for the updates that must not wait for the user's running turn: a private
 * /cancel command and a `stopped_message_generation` update (the draft's stop
 * button). The turn middleware skips ordering for them.
 */
export function bypassesTurn(ctx: Context): boolean {
  return ctx.update.stopped_message_generation !== undefined || isCancelCommand(ctx);
}

export interface CancelOptions {
  running: AnswerRegistry;
  log: Logger;
}

/**
 * Handlers for the stop button (`stopped_message_generation`) and /cancel. Install
 * before the access gate: neither costs a subscription check or a token. A stop press
 * that matches no running answer (it already finished) is ignored; /cancel with
 * nothing running says so.
 */
export function createCancel(options: CancelOptions): Composer<BotContext> {
  const { running, log } = options;
  const composer = new Composer<BotContext>();
  composer.on("stopped_message_generation", (ctx) => {
    const { chat, draft_id } = ctx.update.stopped_message_generation;
    // In a private chat the chat id is the user's id.
    const stopped = running.cancel(chat.id, draft_id);
    log.info("Stop button in chat {chatId} (draft {draftId}): {outcome}", {
      chatId: chat.id,
      draftId: draft_id,
      outcome: stopped ? "answer stopped" : "no running answer",
    });
  });
  composer.chatType("private").command("cancel", async (ctx) => {
    const stopped = running.cancel(ctx.from.id);
    log.info("/cancel from {userId}: {outcome}", {
      userId: ctx.from.id,
      outcome: stopped ? "answer stopped" : "nothing running",
    });
    // When an answer was stopped, its final message (marked as stopped) is the reply.
    if (!stopped) await ctx.reply(ctx.texts.nothingToCancel);
  });
  return composer;
}
