/**
 * A {@link Store} that keeps the bot working while its primary (Redis) is down, by
 * mirroring into a bounded {@link MemoryStore}.
 *
 * Policy:
 * - `set` and `delete` go to memory and to the primary; they resolve once memory has
 *   them, whether or not the primary write worked (its error is swallowed).
 * - `get` asks the primary; only when it rejects does memory answer.
 * - `setIfAbsent` asks the primary (memory then mirrors a win); only when it rejects
 *   does memory decide, so during an outage the guarantee is per process only.
 * - `deleteIfEquals` / `expireIfEquals` apply to both and report the primary's
 *   answer (memory's while the primary is down); `increment` counts in the primary,
 *   in memory only while it is down.
 * - `ping`, `kind` are the primary's; `close` closes both.
 * - Memory holds at most `maxEntries` (default 10,000) keys, least recently used
 *   evicted first, so keys without a TTL cannot grow it without limit.
 * - Whenever the primary answers, it is the truth: a value written only to memory
 *   during an outage is shadowed by the primary's (older or absent) one once it is
 *   back. Nothing is replayed to the primary.
 *
 * Errors are not logged here: the primary logs its connection changes once each.
 * Invalid arguments (a TTL that is not positive) still reject.
 */
import type { Store } from "./store.ts";
import { MemoryStore, ttlMilliseconds } from "./memory.ts";

export interface FallbackStoreOptions {
  /** Cap of the memory mirror. Default 10,000. */
  maxEntries?: number;
  /** Clock of the memory mirror, for tests. */
  now?: () => number;
}

/** A primary {@link Store} with an in-memory mirror that answers while it is down. */
export class FallbackStore implements Store {
  readonly #primary: Store;
  readonly #memory: MemoryStore;

  constructor(primary: Store, options: FallbackStoreOptions = {}) {
    this.#primary = primary;
    this.#memory = new MemoryStore({ maxEntries: options.maxEntries ?? 10_000, now: options.now });
  }

  get kind(): string {
    return this.#primary.kind;
  }

  async get(key: string): Promise<string | null> {
    try {
      return await this.#primary.get(key);
    } catch {
      return await this.#memory.get(key);
    }
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    await this.#memory.set(key, value, ttlSeconds);
    try {
      await this.#primary.set(key, value, ttlSeconds);
    } catch {
      // Memory has it; the primary catches up on the next write of this key.
    }
  }

  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    ttlMilliseconds(ttlSeconds);
    let won: boolean;
    try {
      won = await this.#primary.setIfAbsent(key, value, ttlSeconds);
    } catch {
      return await this.#memory.setIfAbsent(key, value, ttlSeconds);
    }
    if (won) await this.#memory.set(key, value, ttlSeconds);
    return won;
  }

  async delete(key: string): Promise<void> {
    await this.#memory.delete(key);
    try {
      await this.#primary.delete(key);
    } catch {
      // Gone from memory; the primary's copy shows again only if it comes back.
    }
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    const inMemory = await this.#memory.deleteIfEquals(key, value);
    try {
      return await this.#primary.deleteIfEquals(key, value);
    } catch {
      return inMemory;
    }
  }

  async expireIfEquals(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const inMemory = await this.#memory.expireIfEquals(key, value, ttlSeconds);
    try {
      return await this.#primary.expireIfEquals(key, value, ttlSeconds);
    } catch {
      return inMemory;
    }
  }

  /** The primary's counter; while it is down, a per-process count in memory. */
  async increment(key: string, by: number, ttlSeconds?: number): Promise<number> {
    try {
      return await this.#primary.increment(key, by, ttlSeconds);
    } catch {
      return await this.#memory.increment(key, by, ttlSeconds);
    }
  }

  /** Counts in the primary; while it is down, in memory (that count is not replayed). */
  async add(key: string, by: number, ttlSeconds?: number): Promise<void> {
    try {
      await this.#primary.add(key, by, ttlSeconds);
    } catch {
      await this.#memory.add(key, by, ttlSeconds);
    }
  }

  async counter(key: string): Promise<number> {
    try {
      return await this.#primary.counter(key);
    } catch {
      return await this.#memory.counter(key);
    }
  }

  /** Written to both, like {@link set}. */
  async hashSet(key: string, field: string, value: string): Promise<void> {
    await this.#memory.hashSet(key, field, value);
    try {
      await this.#primary.hashSet(key, field, value);
    } catch {
      // Memory has it: this process still sees it.
    }
  }

  async hashDelete(key: string, field: string): Promise<void> {
    await this.#memory.hashDelete(key, field);
    try {
      await this.#primary.hashDelete(key, field);
    } catch {
      // Gone from memory; the primary's copy shows again only if it comes back.
    }
  }

  /** The primary's fields, plus those this process wrote to memory while it was down. */
  async hashGetAll(key: string): Promise<Record<string, string>> {
    const inMemory = await this.#memory.hashGetAll(key);
    try {
      return { ...inMemory, ...await this.#primary.hashGetAll(key) };
    } catch {
      return inMemory;
    }
  }

  ping(): Promise<void> {
    return this.#primary.ping();
  }

  /** Closes the primary, then clears memory. Safe to call twice. */
  async close(): Promise<void> {
    try {
      await this.#primary.close();
    } finally {
      await this.#memory.close();
    }
  }
}
