/**
 * {@link Store} in process memory: for tests, single-process runs, and as the
 * fallback beside Redis. Nothing survives a restart and nothing is shared.
 *
 * No timers: an expired entry is dropped when it is read, and a write sweeps all
 * expired entries whenever the map has doubled since the last sweep, so sweeping
 * costs amortised O(1) per write and expired entries never outnumber live ones by
 * much. With `maxEntries`, a write beyond that many evicts the least recently used
 * entry (expired or not).
 */
import type { Store } from "./store.ts";

/**
 * A TTL in seconds as whole milliseconds (rounded up). Throws `RangeError` unless
 * it is a positive finite number, so every store rejects the same bad TTLs.
 */
export function ttlMilliseconds(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new RangeError(`TTL must be a positive number of seconds, got ${ttlSeconds}`);
  }
  return Math.ceil(ttlSeconds * 1000);
}

export interface MemoryStoreOptions {
  /** Clock in milliseconds (default `Date.now`); tests pass a fake one. */
  now?: () => number;
  /** Evict least recently used entries beyond this many. Default: no limit. */
  maxEntries?: number;
}

interface Entry {
  value: string;
  /** Absolute expiry in ms, or `Infinity`. */
  expiresAt: number;
}

const MIN_SWEEP_SIZE = 1024;

/** A {@link Store} over a `Map`. Each call is atomic (no await inside). */
export class MemoryStore implements Store {
  readonly kind = "memory";
  readonly #map = new Map<string, Entry>();
  /** Hashes are records the bot lists and deletes itself: kept apart, never evicted. */
  readonly #hashes = new Map<string, Map<string, string>>();
  readonly #now: () => number;
  readonly #maxEntries: number;
  #sweepAt = MIN_SWEEP_SIZE;

  constructor(options: MemoryStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxEntries = options.maxEntries ?? Infinity;
    if (!(this.#maxEntries >= 1)) throw new RangeError("maxEntries must be at least 1");
  }

  /** Entries held, expired ones not yet swept included (for tests and /stats). */
  get size(): number {
    return this.#map.size;
  }

  /** The live entry, refreshed as most recently used; drops it when expired. */
  #live(key: string): Entry | undefined {
    const entry = this.#map.get(key);
    if (!entry) return undefined;
    this.#map.delete(key);
    if (entry.expiresAt <= this.#now()) return undefined;
    this.#map.set(key, entry);
    return entry;
  }

  #put(key: string, value: string, ttlSeconds: number | undefined): void {
    const expiresAt = ttlSeconds === undefined
      ? Infinity
      : this.#now() + ttlMilliseconds(ttlSeconds);
    this.#map.delete(key);
    this.#map.set(key, { value, expiresAt });
    if (this.#map.size > this.#maxEntries) {
      // Map iteration follows insertion order and reads re-insert: the first key is
      // the least recently used.
      this.#map.delete(this.#map.keys().next().value!);
    }
    if (this.#map.size >= this.#sweepAt) this.#sweep();
  }

  /** Drops every expired entry. */
  #sweep(): void {
    const now = this.#now();
    for (const [key, entry] of this.#map) {
      if (entry.expiresAt <= now) this.#map.delete(key);
    }
    this.#sweepAt = Math.max(MIN_SWEEP_SIZE, this.#map.size * 2);
  }

  get(key: string): Promise<string | null> {
    return Promise.resolve(this.#live(key)?.value ?? null);
  }

  /** Rejects with `RangeError` for a TTL that is not a positive number. */
  set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    try {
      this.#put(key, value, ttlSeconds);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    try {
      if (this.#live(key)) return Promise.resolve(false);
      this.#put(key, value, ttlSeconds);
      return Promise.resolve(true);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(key: string): Promise<void> {
    this.#map.delete(key);
    return Promise.resolve();
  }

  deleteIfEquals(key: string, value: string): Promise<boolean> {
    if (this.#live(key)?.value !== value) return Promise.resolve(false);
    this.#map.delete(key);
    return Promise.resolve(true);
  }

  expireIfEquals(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    try {
      if (this.#live(key)?.value !== value) return Promise.resolve(false);
      this.#put(key, value, ttlSeconds);
      return Promise.resolve(true);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  increment(key: string, by: number, ttlSeconds?: number): Promise<number> {
    try {
      const entry = this.#live(key);
      const next = (entry ? Number(entry.value) || 0 : 0) + by;
      if (entry && entry.expiresAt !== Infinity) {
        entry.value = String(next);
      } else {
        this.#put(key, String(next), ttlSeconds);
      }
      return Promise.resolve(next);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  async add(key: string, by: number, ttlSeconds?: number): Promise<void> {
    await this.increment(key, by, ttlSeconds);
  }

  async counter(key: string): Promise<number> {
    return Number(await this.get(key) ?? 0) || 0;
  }

  hashSet(key: string, field: string, value: string): Promise<void> {
    let hash = this.#hashes.get(key);
    if (!hash) this.#hashes.set(key, hash = new Map());
    hash.set(field, value);
    return Promise.resolve();
  }

  hashDelete(key: string, field: string): Promise<void> {
    const hash = this.#hashes.get(key);
    hash?.delete(field);
    if (hash?.size === 0) this.#hashes.delete(key);
    return Promise.resolve();
  }

  hashGetAll(key: string): Promise<Record<string, string>> {
    return Promise.resolve(Object.fromEntries(this.#hashes.get(key) ?? []));
  }

  ping(): Promise<void> {
    return Promise.resolve();
  }

  /** Clears the map. Safe to call twice; the store stays usable (it has nothing to release). */
  close(): Promise<void> {
    this.#map.clear();
    this.#hashes.clear();
    return Promise.resolve();
  }
}
