/**
 * Middleware that runs each update once and each user's turns one at a time across
 * processes (see `src/turns.ts` for the lock and the done marks). In-process order
 * comes first from `sequentialize` in `bot.ts`, so the lock is only contended when
 * several instances share the store.
 */
import type { Context, MiddlewareFn } from "grammy";
import type { Logger } from "@logtape/logtape";
import type { Store } from "../store/store.ts";
import { claim, isDone, markDone, type TurnLock } from "../turns.ts";
import type { Metrics } from "../metrics.ts";
import type { Inbox } from "../inbox.ts";
import { textsFor } from "./texts.ts";
import { isUnreachableChat } from "./telegram_errors.ts";
import { replyParameters } from "./edits.ts";

export interface OnceOptions {
  store: Store;
  lock: TurnLock;
  log: Logger;
  /** The turn an update belongs to (the user), or `undefined` for none (e.g. /cancel). */
  turnOf: (ctx: Context) => string | undefined;
  /** Turn waits and turns in flight, for /metrics. */
  metrics?: Pick<Metrics, "turnWait" | "turnsInFlight">;
  /** Where accepted updates wait until they are done. */
  inbox: Inbox;
}

const ARRIVED = Symbol("arrived");
type Stamped = Context & { [ARRIVED]?: number };

/**
 * Notes when an update arrived, before any queueing (install it before
 * `sequentialize`), so the turn wait metric covers the whole wait.
 */
export function stampArrival<C extends Context>(): MiddlewareFn<C> {
  return (ctx, next) => {
    (ctx as Stamped)[ARRIVED] = performance.now();
    return next();
  };
}

/**
 * Skips re-delivered updates, holds the user's turn while an update is handled, and
 * settles the update in the inbox: an update that was handled (answered, or refused
 * with a message) gets its done mark and leaves the inbox; one whose handler threw is
 * released for a retry, and after `inbox.maxAttempts` failures the user gets the
 * generic error text and the update is done.
 */
export function handleOnce<C extends Context>(options: OnceOptions): MiddlewareFn<C> {
  const { store, lock, log, inbox } = options;

  async function failed(ctx: Context, error: unknown): Promise<void> {
    const updateId = ctx.update.update_id;
    if (isUnreachableChat(error)) {
      // Blocked, or the chat is gone: a retry would spend tokens on an answer nobody gets.
      log.warning("Update {updateId}: the chat cannot be reached; not retried: {error}", {
        updateId,
        error,
      });
      await markDone(store, updateId);
      await inbox.done(updateId);
      return;
    }
    const attempts = await inbox.failed(updateId, ctx.update);
    const max = inbox.maxAttempts;
    if (attempts < max) {
      log.warning(
        "Update {updateId} failed (attempt {attempts} of {max}); retried later: {error}",
        {
          updateId,
          attempts,
          max,
          error,
        },
      );
      return;
    }
    log.error("Update {updateId} failed {attempts} times; the user is told: {error}", {
      updateId,
      attempts,
      error,
    });
    if (ctx.chat?.type === "private" && ctx.message) {
      await ctx.reply(textsFor(ctx.from?.language_code).failed, {
        reply_parameters: replyParameters(ctx.message.message_id),
      }).catch((error) => log.warning("The error text did not reach the user: {error}", { error }));
    }
    await markDone(store, updateId);
    await inbox.done(updateId);
  }

  return async (ctx, next) => {
    const updateId = ctx.update.update_id;
    const turn = options.turnOf(ctx);
    if (turn === undefined) {
      // A stop or /cancel: once, now or never (a retry would come too late to matter).
      try {
        if (await claim(store, updateId)) await next();
        else log.info("Update {updateId} was handled before; skipped", { updateId });
      } finally {
        await inbox.done(updateId);
      }
      return;
    }
    const waitStarted = (ctx as Stamped)[ARRIVED] ?? performance.now();
    const release = await lock.acquire(turn);
    options.metrics?.turnWait.observe((performance.now() - waitStarted) / 1000);
    options.metrics?.turnsInFlight.inc();
    try {
      if (await isDone(store, updateId)) {
        log.info("Update {updateId} was handled before; skipped", { updateId });
        await inbox.done(updateId);
        return;
      }
      try {
        await next();
      } catch (error) {
        await failed(ctx, error);
        return;
      }
      await markDone(store, updateId);
      await inbox.done(updateId);
    } finally {
      options.metrics?.turnsInFlight.dec();
      await release();
    }
  };
}
