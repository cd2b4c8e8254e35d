/**
 * One turn per user across every process sharing the store, and every update handled
 * once. Both halves of "never lost, never twice" for several instances behind one
 * Redis (or one Deno KV database on Deno Deploy):
 *
 * - **Turn lock** `turn:{user_id}`: `setIfAbsent` with a short TTL (30 s) and a random
 *   token, renewed every 10 s while the turn runs and deleted by compare-and-delete
 *   when it ends. A crashed holder stops renewing, so its lock lapses within the TTL.
 *   Waiters retry with a jittered backoff capped at 250 ms.
 * - **Done marks** `update:{update_id}` (24 h): checked inside the turn and written once
 *   the update was handled: answered, or refused with a message. An update that
 *   Telegram re-sends while the first delivery is still being answered waits for the
 *   turn, then sees the mark and is skipped. A handler that threw leaves no mark: its
 *   update is retried from the inbox (`inbox.ts`, `bot/once.ts`), and so is the update
 *   of a process that died mid-turn; the mark keeps either from being answered twice.
 *
 * The store may fail: the lock then gives way (logged once) instead of blocking
 * the bot; the FallbackStore in front of Redis makes that rare.
 */
import type { Logger } from "@logtape/logtape";
import type { Store } from "./store/store.ts";
import { keys, ttl } from "./store/keys.ts";
import { type Clock, systemClock } from "./clock.ts";

export interface TurnLockOptions {
  store: Store;
  log: Logger;
  /** Lock TTL in seconds; renewed at a third of it. Default 30. */
  ttlSeconds?: number;
  /** Paces retries and renewals (tests drive it by hand); default the system clock. */
  clock?: Clock;
}

/** Releases a held turn. Never rejects. */
export type Release = () => Promise<void>;

export interface TurnLock {
  /** Waits until the turn (a user id) is free and takes it. */
  acquire(turn: string): Promise<Release>;
}

const MAX_BACKOFF_MS = 250;

/** Creates the lock over a store. */
export function createTurnLock(options: TurnLockOptions): TurnLock {
  const { store, log } = options;
  const lockTtl = options.ttlSeconds ?? ttl.turn;
  const clock = options.clock ?? systemClock;
  let warned = false;
  const warnOnce = (error: unknown) => {
    if (warned) return;
    warned = true;
    log.warning("Turn lock unavailable ({error}); turns are ordered per process only", {
      error,
    });
  };

  async function acquire(turn: string): Promise<Release> {
    const key = keys.turn(turn);
    const token = crypto.randomUUID();
    let delay = 5;
    try {
      while (!(await store.setIfAbsent(key, token, lockTtl))) {
        await clock.sleep(delay * (0.5 + Math.random()));
        delay = Math.min(delay * 2, MAX_BACKOFF_MS);
      }
    } catch (error) {
      warnOnce(error);
      return () => Promise.resolve();
    }
    const held = new AbortController();
    (async () => {
      while (true) {
        await clock.sleep((lockTtl * 1000) / 3, held.signal);
        if (held.signal.aborted) return;
        await store.expireIfEquals(key, token, lockTtl).catch(warnOnce);
      }
    })();
    return async () => {
      held.abort();
      await store.deleteIfEquals(key, token).catch(warnOnce);
    };
  }

  return { acquire };
}

/**
 * The lock for a store only this process uses (the embedded KV file, memory):
 * `sequentialize` already orders each user's turns within the process, so taking a
 * lock in the store as well would be the same work twice.
 */
export const inProcessTurns: TurnLock = {
  acquire: () => Promise.resolve(() => Promise.resolve()),
};

/** Whether an update was already handled (its done mark exists). */
export async function isDone(store: Store, updateId: number): Promise<boolean> {
  try {
    return (await store.get(keys.done(updateId))) !== null;
  } catch {
    return false;
  }
}

/** Marks an update handled for 24 h. Never rejects. */
export async function markDone(store: Store, updateId: number): Promise<void> {
  await store.set(keys.done(updateId), "done", ttl.done).catch(() => {});
}

/** Claims an update that runs outside any turn; `false` when it was claimed before. */
export async function claim(store: Store, updateId: number): Promise<boolean> {
  try {
    return await store.setIfAbsent(keys.done(updateId), "done", ttl.done);
  } catch {
    return true;
  }
}
