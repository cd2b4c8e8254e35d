/**
 * The one storage seam of the bot: a tiny string key-value interface that Redis,
 * Deno KV and memory all implement. Keys stay compatible with the Python bot
 * (`thread_id:{user_id}`, `subscription:{user_id}`); see `keys.ts`.
 *
 * Every method may reject when the backing service is down; callers decide what a
 * failure means (the access gate checks without the cache, for example).
 */
export interface Store {
  /** A short name for logs and /stats: `"redis"`, `"kv"` or `"memory"`. */
  readonly kind: string;
  /** The value, or `null` when absent or expired. */
  get(key: string): Promise<string | null>;
  /** Sets a value; `ttlSeconds` makes it expire, omitted means no expiry. */
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  /**
   * Sets a value only when the key is absent (atomic across processes sharing the
   * backend). Resolves `true` when this call set it.
   */
  setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /** Deletes a key; deleting an absent key is not an error. */
  delete(key: string): Promise<void>;
  /** Deletes the key only while it holds `value` (atomic). Resolves `true` when deleted. */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  /** Sets a new TTL only while the key holds `value` (atomic). Resolves `true` when renewed. */
  expireIfEquals(key: string, value: string, ttlSeconds: number): Promise<boolean>;
  /**
   * Adds `by` to an integer counter (an absent key counts as 0), atomically across
   * processes sharing the backend. `ttlSeconds` sets the expiry when the counter has
   * none yet (so a daily counter keeps its first deadline). Resolves with the new value.
   */
  increment(key: string, by: number, ttlSeconds?: number): Promise<number>;
  /**
   * Adds `by` (0 or more) to a counter without reading it back, so many processes can
   * count on one key without contending (Deno KV sums atomically, without a retry
   * loop). `ttlSeconds` as for {@link increment}. Read it with {@link counter}, not
   * `get`: Deno KV keeps such counters apart from plain values.
   */
  add(key: string, by: number, ttlSeconds?: number): Promise<void>;
  /** The value of a counter written by {@link add}: 0 when absent or expired. */
  counter(key: string): Promise<number>;
  /**
   * Sets `field` of the hash `key` (no expiry): a small set of records that can be
   * listed, such as the inbox of updates not yet answered.
   */
  hashSet(key: string, field: string, value: string): Promise<void>;
  /** Deletes `field` of the hash `key`; deleting an absent field is not an error. */
  hashDelete(key: string, field: string): Promise<void>;
  /** Every field of the hash `key` with its value; `{}` when there is none. */
  hashGetAll(key: string): Promise<Record<string, string>>;
  /** Resolves when the backend answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** Releases connections and handles. Safe to call twice. */
  close(): Promise<void>;
}
