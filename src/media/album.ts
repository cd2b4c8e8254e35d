/**
 * Albums: several photos (or files) sent together arrive as separate updates that
 * share `media_group_id`. They are answered once, as one input.
 *
 * How it fits the turn order (`sequentialize`, the turn lock and the done marks in
 * `bot/once.ts`, the inbox):
 *
 * 1. {@link Albums.collect} runs before the turn order: every album part is noted here
 *    as it arrives, also while an earlier part holds the user's turn.
 * 2. The first part to get the turn calls {@link Albums.gather}, which waits until no
 *    part has arrived for {@link ALBUM_WINDOW_MS} (1.5 s; at most
 *    {@link ALBUM_MAX_WAIT_MS} in all) and takes every part noted so far. That part's
 *    handler answers the whole album.
 * 3. Once it was handled, {@link AlbumBatch.done} gives the other parts their done marks
 *    (`settled`, `markDone` in the store). When their turn comes they are skipped as
 *    handled and leave the inbox. Should the handler throw, {@link AlbumBatch.release}
 *    puts the parts back, so the next part to get the turn answers them (the failed
 *    update is retried from the inbox and is skipped once they are answered).
 *
 * A crash mid-album loses nothing and answers nothing twice in the usual case: no part
 * has a done mark before the answer is delivered, so on restart the inbox hands every
 * part over again, they are noted here again, and the first to get the turn answers the
 * album. (As for any message, a crash after the answer went out but before the done
 * marks were written answers it again.)
 *
 * Parts are noted per process: with several instances behind a load balancer, parts
 * that reach another instance are answered there, separately.
 */
import type { Context, MiddlewareFn } from "grammy";
import type { Message } from "grammy/types";
import { type Clock, systemClock } from "../clock.ts";

/** Quiet time after the last part before an album is answered. */
export const ALBUM_WINDOW_MS = 1500;
/** The longest an album waits for its parts, from the first part's turn. */
export const ALBUM_MAX_WAIT_MS = 10_000;
/** How long an album's parts are remembered after its last activity. */
const FORGET_MS = 10 * 60_000;

/** The parts one handler answers. */
export interface AlbumBatch {
  /** The album's messages, in the order they were sent. */
  messages: Message[];
  /** The album was handled: the other parts get their done marks. Never rejects. */
  done(): Promise<void>;
  /** The handler failed: the parts go back, for the next part's turn to answer. */
  release(): void;
}

export interface AlbumsOptions {
  /** Marks updates handled (`markDone` for each); never rejects. */
  settled: (updateIds: number[]) => Promise<void>;
  windowMs?: number;
  maxWaitMs?: number;
  /** Times the quiet window (tests drive it by hand); default the system clock. */
  clock?: Clock;
}

interface Group {
  /** Parts noted and not yet taken, by update id. */
  pending: Map<number, Message>;
  /** Parts a handler is answering now. */
  taken: Map<number, Message>;
  /** Parts answered. */
  consumed: Set<number>;
  lastAt: number;
}

/** The albums of this process; see the module comment. */
export class Albums {
  readonly #o: AlbumsOptions;
  readonly #groups = new Map<string, Group>();
  readonly #clock: Clock;

  constructor(options: AlbumsOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Middleware to install before the turn order: notes each album part as it arrives. */
  collect<C extends Context>(): MiddlewareFn<C> {
    return (ctx, next) => {
      const message = ctx.message;
      if (message?.media_group_id && ctx.chat?.type === "private") {
        this.note(ctx.update.update_id, message);
      }
      return next();
    };
  }

  /** Notes an album part (again: a re-delivered or recovered update is noted once). */
  note(updateId: number, message: Message): void {
    this.#forgetOld();
    const key = keyOf(message);
    let group = this.#groups.get(key);
    if (!group) {
      group = { pending: new Map(), taken: new Map(), consumed: new Set(), lastAt: 0 };
      this.#groups.set(key, group);
    }
    // Only a new part restarts the quiet window: a part noted again (its turn came, or
    // Telegram re-sent it) says nothing about parts still to come.
    if (
      !group.consumed.has(updateId) && !group.taken.has(updateId) &&
      !group.pending.has(updateId)
    ) {
      group.pending.set(updateId, message);
      group.lastAt = this.#clock.now();
    }
  }

  /**
   * Called in an album part's turn: `undefined` when this part was already answered
   * with its album (nothing more to do), otherwise the parts to answer now, after the
   * album's quiet window.
   */
  async gather(updateId: number, message: Message): Promise<AlbumBatch | undefined> {
    const key = keyOf(message);
    if (this.#groups.get(key)?.consumed.has(updateId)) return undefined;
    this.note(updateId, message);
    const group = this.#groups.get(key)!;
    const windowMs = this.#o.windowMs ?? ALBUM_WINDOW_MS;
    const maxWaitMs = this.#o.maxWaitMs ?? ALBUM_MAX_WAIT_MS;
    const started = this.#clock.now();
    for (;;) {
      const quiet = this.#clock.now() - group.lastAt;
      const waited = this.#clock.now() - started;
      if (quiet >= windowMs || waited >= maxWaitMs) break;
      await this.#clock.sleep(Math.min(windowMs - quiet, maxWaitMs - waited));
    }
    const parts = [...group.pending];
    group.pending.clear();
    for (const [id, m] of parts) group.taken.set(id, m);
    parts.sort(([, a], [, b]) => a.message_id - b.message_id);
    let ended = false;
    return {
      messages: parts.map(([, m]) => m),
      done: async () => {
        if (ended) return;
        ended = true;
        for (const [id] of parts) {
          group.taken.delete(id);
          group.consumed.add(id);
        }
        group.lastAt = this.#clock.now();
        const others = parts.map(([id]) => id).filter((id) => id !== updateId);
        if (others.length) await this.#o.settled(others).catch(() => {});
      },
      release: () => {
        if (ended) return;
        ended = true;
        for (const [id, m] of parts) {
          group.taken.delete(id);
          group.pending.set(id, m);
        }
      },
    };
  }

  /** Albums remembered now (for tests). */
  get size(): number {
    return this.#groups.size;
  }

  #forgetOld(): void {
    const now = this.#clock.now();
    for (const [key, group] of this.#groups) {
      if (group.taken.size === 0 && now - group.lastAt > FORGET_MS) this.#groups.delete(key);
    }
  }
}

function keyOf(message: Message): string {
  return `${message.chat.id}:${message.media_group_id}`;
}
