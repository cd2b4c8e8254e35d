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
 * The registry knows the answers this process is writing. With several instances
 * (webhook mode behind a load balancer, Deno Deploy), the stop may reach another
 * instance: a {@link CancelRelay} over the shared store then carries it. The
 * instance writing an answer records `answer:{user_id}` → answer id, and watches
 * `cancel:{answer_id}` (a read every half second while the answer runs); a stop that
 * finds no local answer writes that key.
 */
import { Composer, type Context } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { BotContext } from "./context.ts";
import type { Store } from "../store/store.ts";
import { keys, ttl } from "../store/keys.ts";

/** Carries stops between instances that share a store. */
export interface CancelRelay {
  /** Announces that this process writes answer `answerId` for `userId`; returns a stop function. */
  announce(userId: number, answerId: string, onCancel: (draftId?: number) => void): () => void;
  /** Asks whichever instance writes the user's answer to stop it; false when none does. */
  publish(userId: number, draftId?: number): Promise<boolean>;
}

/** A {@link CancelRelay} over the shared store, checking for stops every `intervalMs`. */
export function storeRelay(store: Store, log: Logger, intervalMs = 500): CancelRelay {
  return {
    announce(userId, answerId, onCancel) {
      store.set(keys.answer(userId), answerId, ttl.answer).catch(() => {});
      const timer = setInterval(async () => {
        try {
          const stop = await store.get(keys.cancel(answerId));
          if (stop === null) return;
          await store.delete(keys.cancel(answerId));
          onCancel(stop ? Number(stop) : undefined);
        } catch (error) {
          log.debug("Cancel relay: {error}", { error });
        }
      }, intervalMs);
      return () => {
        clearInterval(timer);
        store.deleteIfEquals(keys.answer(userId), answerId).catch(() => {});
      };
    },
    async publish(userId, draftId) {
      const answerId = await store.get(keys.answer(userId)).catch(() => null);
      if (answerId === null) return false;
      const value = draftId === undefined ? "" : String(draftId);
      await store.set(keys.cancel(answerId), value, ttl.cancel);
      return true;
    },
  };
}

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
  readonly #relay?: CancelRelay;

  /** With a relay, stops also travel to and from other instances. */
  constructor(relay?: CancelRelay) {
    this.#relay = relay;
  }

  /**
   * Registers a new answer for `userId`. Should one still be registered (it cannot
   * happen while turns are ordered per user), the new one replaces it; the old one's
   * `end()` then leaves the new one alone.
   */
  begin(userId: number): RunningAnswer {
    const entry: Entry = { controller: new AbortController(), drafts: new Set() };
    this.#running.set(userId, entry);
    const unannounce = this.#relay?.announce(
      userId,
      crypto.randomUUID(),
      (draftId) => this.#abort(entry, draftId),
    );
    return {
      signal: entry.controller.signal,
      addDraft: (draftId) => entry.drafts.add(draftId),
      end: () => {
        unannounce?.();
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
    return entry ? this.#abort(entry, draftId) : false;
  }

  /**
   * Like {@link cancel}, and when this process writes no answer for the user, asks
   * the other instances through the relay. Resolves whether a stop was made or sent.
   */
  async cancelAnywhere(userId: number, draftId?: number): Promise<boolean> {
    if (this.#running.has(userId)) return this.cancel(userId, draftId);
    return await this.#relay?.publish(userId, draftId).catch(() => false) ?? false;
  }

  #abort(entry: Entry, draftId?: number): boolean {
    if (entry.controller.signal.aborted) return false;
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
  composer.on("stopped_message_generation", async (ctx) => {
    const { chat, draft_id } = ctx.update.stopped_message_generation;
    // In a private chat the chat id is the user's id.
    const stopped = await running.cancelAnywhere(chat.id, draft_id);
    log.info("Stop button in chat {chatId} (draft {draftId}): {outcome}", {
      chatId: chat.id,
      draftId: draft_id,
      outcome: stopped ? "answer stopped" : "no running answer",
    });
  });
  composer.chatType("private").command("cancel", async (ctx) => {
    const stopped = await running.cancelAnywhere(ctx.from.id);
    log.info("/cancel from {userId}: {outcome}", {
      userId: ctx.from.id,
      outcome: stopped ? "answer stopped" : "nothing running",
    });
    // When an answer was stopped, its final message (marked as stopped) is the reply.
    if (!stopped) await ctx.reply(ctx.texts.nothingToCancel);
  });
  return composer;
}
