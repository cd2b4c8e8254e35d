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

export interface OnceOptions {
  store: Store;
  lock: TurnLock;
  log: Logger;
  /** The turn an update belongs to (the user), or `undefined` for none (e.g. /cancel). */
  turnOf: (ctx: Context) => string | undefined;
  /** Turn waits and turns in flight, for /metrics. */
  metrics?: Pick<Metrics, "turnWait" | "turnsInFlight">;
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

/** Skips re-delivered updates and holds the user's turn while an update is handled. */
export function handleOnce<C extends Context>(options: OnceOptions): MiddlewareFn<C> {
  const { store, lock, log } = options;
  return async (ctx, next) => {
    const updateId = ctx.update.update_id;
    const turn = options.turnOf(ctx);
    if (turn === undefined) {
      if (await claim(store, updateId)) return await next();
      log.info("Update {updateId} was handled before; skipped", { updateId });
      return;
    }
    const waitStarted = (ctx as Stamped)[ARRIVED] ?? performance.now();
    const release = await lock.acquire(turn);
    options.metrics?.turnWait.observe((performance.now() - waitStarted) / 1000);
    options.metrics?.turnsInFlight.inc();
    try {
      if (await isDone(store, updateId)) {
        log.info("Update {updateId} was handled before; skipped", { updateId });
        return;
      }
      await next();
    } finally {
      options.metrics?.turnsInFlight.dec();
      await markDone(store, updateId);
      await release();
    }
  };
}
