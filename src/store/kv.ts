/**
 * {@link Store} over Deno KV: the embedded default (a SQLite file locally; the app's
 * KV database on Deno Deploy). Keys are `["s", key]`.
 *
 * Deno KV's `expireIn` deletes an entry only "some time after" its deadline, so each
 * value is stored as `{ v, exp }` and an entry past `exp` reads as absent; `expireIn`
 * is still set so KV reclaims the space eventually.
 *
 * Several processes may share one file. SQLite then sometimes answers "database is
 * locked" under contention (seen here with two handles and 50 concurrent writes);
 * such a call did nothing, so it is retried with a short jittered backoff.
 */
import type { Store } from "./store.ts";
import { ttlMilliseconds } from "./memory.ts";

interface Entry {
  v: string;
  /** Absolute expiry in ms since the epoch, or `null` for none. */
  exp: number | null;
}

const WEEK_MS = 7 * 24 * 3600 * 1000;

/** How often `setIfAbsent` re-reads after losing a race before giving up. */
const MAX_ATTEMPTS = 10;

/** Retries of a call that met a locked database: about 1 s in all. */
const LOCKED_RETRIES = 20;

async function retryLocked<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const locked = err instanceof Error && /database is locked/i.test(err.message);
      if (!locked || attempt > LOCKED_RETRIES) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5 * attempt, 50) * (0.5 + Math.random())));
    }
  }
}

function isLive(entry: Entry | null, now: number): entry is Entry {
  return entry !== null && (entry.exp === null || entry.exp > now);
}

/** A {@link Store} over an opened `Deno.Kv`, which it owns and closes. */
export class KvStore implements Store {
  readonly kind = "kv";
  readonly #kv: Deno.Kv;
  #closed = false;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /**
   * Opens the KV database at `path` (creating its directory), or the default one
   * when omitted (Deno Deploy's, or a per-script local file). `":memory:"` gives a
   * throw-away database.
   */
  static async open(path?: string): Promise<KvStore> {
    if (path && path !== ":memory:") {
      const slash = path.lastIndexOf("/");
      if (slash > 0) await Deno.mkdir(path.slice(0, slash), { recursive: true });
    }
    return new KvStore(await Deno.openKv(path));
  }

  #key(key: string): Deno.KvKey {
    this.#open();
    return ["s", key];
  }

  #open(): void {
    if (this.#closed) throw new Error("KvStore is closed");
  }

  async get(key: string): Promise<string | null> {
    const k = this.#key(key);
    const entry = await retryLocked(() => this.#kv.get<Entry>(k));
    return isLive(entry.value, Date.now()) ? entry.value.v : null;
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    const k = this.#key(key);
    if (ttlSeconds === undefined) {
      await retryLocked(() => this.#kv.set(k, { v: value, exp: null } satisfies Entry));
      return;
    }
    const ms = ttlMilliseconds(ttlSeconds);
    await retryLocked(() =>
      this.#kv.set(k, { v: value, exp: Date.now() + ms } satisfies Entry, { expireIn: ms })
    );
  }

  /**
   * Atomic across every process sharing the database: the write is committed only
   * if the entry is still the one read (absent, or present but expired). Losing a
   * race re-reads; a live entry then means `false`.
   */
  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const k = this.#key(key);
    const ms = ttlMilliseconds(ttlSeconds);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const current = await retryLocked(() => this.#kv.get<Entry>(k));
      if (isLive(current.value, Date.now())) return false;
      const result = await retryLocked(() =>
        this.#kv.atomic()
          .check(current)
          .set(k, { v: value, exp: Date.now() + ms } satisfies Entry, { expireIn: ms })
          .commit()
      );
      if (result.ok) return true;
    }
    throw new Error(`setIfAbsent(${key}): still contended after ${MAX_ATTEMPTS} attempts`);
  }

  async delete(key: string): Promise<void> {
    const k = this.#key(key);
    await retryLocked(() =>
      this.#kv.atomic().delete(k).delete(["c", key]).delete(["ce", key]).commit()
    );
  }

  /**
   * Compare-and-swap on one entry: `update` maps the live entry (or `null`) to the
   * new entry, `undefined` to leave it, or `"delete"`; retried when another writer
   * got in between. Resolves with what `update` returned.
   */
  async #swap<T extends Entry | "delete" | undefined>(
    key: string,
    update: (current: Entry | null) => T,
  ): Promise<T> {
    const k = this.#key(key);
    for (let attempt = 0; attempt < MAX_ATTEMPTS * 5; attempt++) {
      const current = await retryLocked(() => this.#kv.get<Entry>(k));
      const next = update(isLive(current.value, Date.now()) ? current.value : null);
      if (next === undefined) return next;
      const op = this.#kv.atomic().check(current);
      if (next === "delete") op.delete(k);
      else {
        const expireIn = next.exp === null ? undefined : Math.max(1, next.exp - Date.now());
        op.set(k, next, expireIn === undefined ? undefined : { expireIn });
      }
      if ((await retryLocked(() => op.commit())).ok) return next;
      // Lost to another writer: step back a little so contenders spread out.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(2 ** attempt, 50)));
    }
    throw new Error(`${key}: still contended after ${MAX_ATTEMPTS * 5} attempts`);
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    const done = await this.#swap(key, (e) => e?.v === value ? "delete" as const : undefined);
    return done === "delete";
  }

  async expireIfEquals(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const ms = ttlMilliseconds(ttlSeconds);
    const done = await this.#swap(
      key,
      (e) => e?.v === value ? { v: value, exp: Date.now() + ms } : undefined,
    );
    return done !== undefined;
  }

  async increment(key: string, by: number, ttlSeconds?: number): Promise<number> {
    const ms = ttlSeconds === undefined ? undefined : ttlMilliseconds(ttlSeconds);
    const next = await this.#swap(key, (e) => ({
      v: String((e ? Number(e.v) || 0 : 0) + by),
      exp: e?.exp ?? (ms === undefined ? null : Date.now() + ms),
    }));
    return Number(next.v);
  }

  /**
   * Counters live under `["c", key]` as `Deno.KvU64`, summed by `atomic().sum()`: no
   * read, no check, so no contention however many writers. `sum` cannot carry an
   * expiry, so a TTL is a deadline under `["ce", key]`, written once by the first add
   * (and renewed when an add finds it passed, which also resets the count). KV
   * deletes the deadline a week after it passes; the counter itself stays (a few
   * small keys a day, under keys that name their day).
   */
  async add(key: string, by: number, ttlSeconds?: number): Promise<void> {
    if (!(by >= 0) || !Number.isSafeInteger(by)) {
      throw new RangeError(`add() takes a whole number of 0 or more, got ${by}`);
    }
    const c: Deno.KvKey = ["c", this.#key(key)[1]];
    const ce: Deno.KvKey = ["ce", key];
    const ms = ttlSeconds === undefined ? undefined : ttlMilliseconds(ttlSeconds);
    const deadline = await retryLocked(() => this.#kv.get<number>(ce));
    const expired = deadline.value !== null && deadline.value <= Date.now();
    if (ms !== undefined && (deadline.value === null || expired)) {
      const exp = Date.now() + ms;
      const op = this.#kv.atomic().check(deadline)
        .set(ce, exp, { expireIn: ms + WEEK_MS });
      if (expired) op.delete(c);
      // Losing the race means another writer set the deadline (or reset): fine.
      await retryLocked(() => op.commit());
    }
    await retryLocked(() => this.#kv.atomic().sum(c, BigInt(by)).commit());
  }

  async counter(key: string): Promise<number> {
    const c: Deno.KvKey = ["c", this.#key(key)[1]];
    const [count, deadline] = await retryLocked(() =>
      this.#kv.getMany<[Deno.KvU64, number]>([c, ["ce", key]])
    );
    if (deadline.value !== null && deadline.value <= Date.now()) return 0;
    return count.value === null ? 0 : Number(count.value.value);
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    this.#open();
    await retryLocked(() => this.#kv.set(["h", key, field], value));
  }

  async hashDelete(key: string, field: string): Promise<void> {
    this.#open();
    await retryLocked(() => this.#kv.delete(["h", key, field]));
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    this.#open();
    const all: Record<string, string> = {};
    for await (const entry of this.#kv.list<string>({ prefix: ["h", key] })) {
      all[String(entry.key[2])] = entry.value;
    }
    return all;
  }

  /** A read of a key nobody writes: rejects once the database is closed. */
  async ping(): Promise<void> {
    this.#open();
    await this.#kv.get(["ping"]);
  }

  /** Closes the `Deno.Kv`. Safe to call twice; later calls of other methods reject. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
    return Promise.resolve();
  }
}
