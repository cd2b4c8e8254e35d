/**
 * The inbox: every update the bot accepts is recorded in the store before Telegram is
 * told it arrived (before the next `getUpdates` offset moves past it, or before the
 * webhook answers 200), and removed when it was answered or ended with a clear error.
 * So a process that dies mid-answer (kill -9, the OOM killer, a reboot) loses nothing:
 * its entries are taken over and answered by the next process, or by another instance.
 *
 * - Entries live in one store hash, `inbox`: update id → `{ update, owner, attempts }`.
 * - Each process has a random id and, on a shared store, a lease `inbox_owner:{id}`
 *   (TTL `leaseSeconds`, renewed every third of it). On the embedded KV file only one
 *   process runs, so every entry not written by this process is an orphan.
 * - A sweep at start and every half lease takes over orphaned entries: those whose
 *   owner's lease lapsed, and those released after a failed attempt. On a shared store
 *   a claim key `inbox_claim:{update_id}` (set-if-absent, one lease long) lets only one
 *   instance take each, and spaces out retries. Taken updates are handed to the bot in
 *   update order, and the bot's turn order keeps each user's in sequence.
 * - The done marks (`turns.ts`) keep an update that was answered just before its
 *   process died from being answered again.
 *
 * Recording never blocks an update: when the store refuses it, the update is handled
 * anyway (it is then as safe as it was without an inbox) and the failure is logged.
 */
import type { Update } from "grammy/types";
import type { Logger } from "@logtape/logtape";
import type { Store } from "./store/store.ts";
import { keys } from "./store/keys.ts";

export interface InboxOptions {
  store: Store;
  /** Several processes share the store (Redis, Deno Deploy's KV). */
  shared: boolean;
  log: Logger;
  /** Seconds without a renewal after which an instance's entries are taken over. Default 30. */
  leaseSeconds?: number;
  /** Failed attempts before an update is given up (the user then gets an error text). Default 3. */
  maxAttempts?: number;
}

interface Entry {
  update: Update;
  /** The process handling it; `""` once released after a failed attempt. */
  owner: string;
  attempts: number;
}

/** The crash-safe record of accepted updates; see the module comment. */
export class Inbox {
  readonly #o: InboxOptions;
  readonly #id = crypto.randomUUID();
  readonly #lease: number;
  /** Entries this process records or took over, by update id. */
  readonly #mine = new Map<number, Entry>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #sweeping: Promise<number> | undefined;
  #handle: ((update: Update) => Promise<void>) | undefined;

  constructor(options: InboxOptions) {
    this.#o = options;
    this.#lease = options.leaseSeconds ?? 30;
  }

  /** Failed attempts after which an update is given up. */
  get maxAttempts(): number {
    return this.#o.maxAttempts ?? 3;
  }

  /** Records accepted updates, before they are confirmed to Telegram. Never rejects. */
  async record(updates: readonly Update[]): Promise<void> {
    await Promise.all(updates.map(async (update) => {
      const entry: Entry = { update, owner: this.#id, attempts: 0 };
      this.#mine.set(update.update_id, entry);
      try {
        await this.#write(entry);
      } catch (error) {
        this.#o.log.warning(
          "Update {updateId} not recorded in the inbox ({error}): it is lost if this process dies",
          { updateId: update.update_id, error },
        );
      }
    }));
  }

  /** Removes an update that was answered (or refused, or given up). Never rejects. */
  async done(updateId: number): Promise<void> {
    this.#mine.delete(updateId);
    await this.#o.store.hashDelete(keys.inbox, String(updateId)).catch((error) =>
      this.#o.log.warning("Inbox entry {updateId} not removed: {error}", { updateId, error })
    );
  }

  /**
   * Notes a failed attempt and releases the update for a later one (a sweep retries it).
   * Resolves with the number of failed attempts so far.
   */
  async failed(updateId: number, update: Update): Promise<number> {
    const entry = this.#mine.get(updateId) ?? { update, owner: "", attempts: 0 };
    this.#mine.delete(updateId);
    entry.attempts++;
    entry.owner = "";
    await this.#write(entry).catch((error) =>
      this.#o.log.warning("Inbox entry {updateId} not released: {error}", { updateId, error })
    );
    return entry.attempts;
  }

  /**
   * Starts the lease and the sweeps; taken-over updates go to `handle` (the bot's
   * `handleUpdate`, tracked by the transport). Resolves after the first sweep.
   */
  async start(handle: (update: Update) => Promise<void>): Promise<void> {
    this.#handle = handle;
    if (this.#o.shared) {
      await this.#renew();
      this.#every(this.#lease / 3, () => this.#renew());
    }
    await this.sweep();
    this.#every(this.#lease / 2, () => this.sweep());
  }

  /** Stops the lease and the sweeps; entries left are taken over by the next process. */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    await this.#sweeping;
    this.#handle = undefined;
  }

  /** Takes over orphaned entries and hands them on in update order; resolves how many. */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#sweep().finally(() => this.#sweeping = undefined);
    return this.#sweeping;
  }

  async #sweep(): Promise<number> {
    const { store, shared, log } = this.#o;
    let all: Record<string, string>;
    try {
      all = await store.hashGetAll(keys.inbox);
    } catch (error) {
      log.warning("Inbox sweep failed: {error}", { error });
      return 0;
    }
    const owners = new Map<string, boolean>();
    const alive = async (owner: string) => {
      if (!owners.has(owner)) {
        owners.set(owner, (await store.get(keys.inboxOwner(owner)).catch(() => "?")) !== null);
      }
      return owners.get(owner)!;
    };
    const taken: Entry[] = [];
    for (const [field, raw] of Object.entries(all)) {
      const entry = parse(raw);
      if (!entry) {
        log.warning("Inbox entry {field} is unreadable; dropped", { field });
        await store.hashDelete(keys.inbox, field).catch(() => {});
        continue;
      }
      const id = entry.update.update_id;
      if (entry.owner === this.#id || this.#mine.has(id)) continue;
      if (shared) {
        if (entry.owner !== "" && await alive(entry.owner)) continue;
        const claimed = await store
          .setIfAbsent(keys.inboxClaim(id), this.#id, this.#lease)
          .catch(() => false);
        if (!claimed) continue;
      }
      entry.owner = this.#id;
      this.#mine.set(id, entry);
      await this.#write(entry).catch(() => {});
      taken.push(entry);
    }
    if (taken.length === 0) return 0;
    taken.sort((a, b) => a.update.update_id - b.update.update_id);
    log.info("Inbox: taking over {count} unanswered update(s): {ids}", {
      count: taken.length,
      ids: taken.map((e) => e.update.update_id).join(", "),
    });
    for (const entry of taken) {
      // Not awaited one by one: the bot's turn order sequences each user's updates.
      this.#handle?.(entry.update).catch((error) =>
        log.error("Recovered update {updateId} failed: {error}", {
          updateId: entry.update.update_id,
          error,
        })
      );
    }
    return taken.length;
  }

  #write(entry: Entry): Promise<void> {
    return this.#o.store.hashSet(keys.inbox, String(entry.update.update_id), JSON.stringify(entry));
  }

  async #renew(): Promise<void> {
    await this.#o.store.set(keys.inboxOwner(this.#id), "1", this.#lease).catch((error) =>
      this.#o.log.warning("Inbox lease not renewed: {error}", { error })
    );
  }

  #every(seconds: number, fn: () => Promise<unknown>): void {
    const timer = setInterval(() => void fn(), seconds * 1000);
    // Never the reason the process stays up.
    Deno.unrefTimer(timer);
    this.#timers.push(timer);
  }
}

function parse(raw: string): Entry | undefined {
  try {
    const entry = JSON.parse(raw) as Entry;
    return Number.isInteger(entry?.update?.update_id) ? entry : undefined;
  } catch {
    return undefined;
  }
}
