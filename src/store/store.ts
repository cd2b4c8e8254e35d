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
  /** Resolves when the backend answers; rejects when it is unreachable. */
  ping(): Promise<void>;
  /** Releases connections and handles. Safe to call twice. */
  close(): Promise<void>;
}
