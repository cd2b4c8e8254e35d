/**
 * {@link Store} over Redis (ioredis). Keys are the plain strings, so the Python bot's
 * `thread_id:123` stays exactly that.
 *
 * Built so a Redis outage never stalls or crashes the bot:
 * - start-up never blocks or throws: the client connects in the background;
 * - while Redis is unreachable, commands reject at once (no offline queue) and a
 *   command on a hung connection rejects after `commandTimeoutMs`;
 * - the client reconnects by itself forever, with a capped exponential backoff;
 * - connection changes are logged once each: one WARN when the connection is lost
 *   (or cannot be made at start), one INFO when it is back; never one per command.
 *   Logs name `host:port` and the cause, never the password or the URL.
 */
import { Redis, type RedisOptions } from "ioredis";
import { getLogger, type Logger } from "@logtape/logtape";
import type { Store } from "./store.ts";
import { ttlMilliseconds } from "./memory.ts";

/** Where Redis is, as in the config: `url` wins; the other fields fill what it lacks. */
export interface RedisConnection {
  /** `redis://[:password@]host[:port][/db]` or `rediss://…` */
  url?: string;
  host?: string;
  port?: number;
  db?: number;
  password?: string;
}

/** Timing knobs; the defaults suit production, tests shorten them. */
export interface RedisTuning {
  /** A command without a reply within this time rejects. Default 1500. */
  commandTimeoutMs?: number;
  /** A connection attempt that does not complete within this time fails. Default 2000. */
  connectTimeoutMs?: number;
  /** Cap of the reconnect backoff (50 ms doubling up to this). Default 5000. */
  maxReconnectDelayMs?: number;
}

export type RedisStoreOptions = RedisConnection & RedisTuning;

// Lua scripts run atomically in Redis: compare-and-delete / compare-and-expire for
// locks, and an increment that sets the expiry only when the counter has none.
const DELETE_IF_EQUALS =
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end`;
const EXPIRE_IF_EQUALS =
  `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) else return 0 end`;
const INCREMENT = `local v = redis.call("INCRBY", KEYS[1], ARGV[1])
if ARGV[2] ~= "" and redis.call("PTTL", KEYS[1]) == -1 then redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return v`;

/** How long ioredis waits for a closing socket before destroying it. */
const DISCONNECT_GRACE_MS = 100;

/** `host:port` for logs; never includes credentials. */
export function redisAddress(conn: RedisConnection): string {
  if (conn.url) {
    try {
      const u = new URL(conn.url);
      return `${u.hostname || "localhost"}:${u.port || 6379}`;
    } catch {
      return "(unparsable REDIS_URL)";
    }
  }
  return `${conn.host ?? "localhost"}:${conn.port ?? 6379}`;
}

function passwordOf(conn: RedisConnection): string | undefined {
  if (conn.password) return conn.password;
  if (!conn.url) return undefined;
  try {
    const p = new URL(conn.url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

/** Resolves on the first of `events`, or after `ms`; leaves no listener or timer behind. */
function firstOf(client: Redis, events: string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const e of events) client.off(e, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const e of events) client.once(e, done);
  });
}

/** A {@link Store} over one ioredis connection. */
export class RedisStore implements Store {
  readonly kind = "redis";
  readonly #client: Redis;
  readonly #log: Logger;
  readonly #address: string;
  readonly #password: string | undefined;
  readonly #commandTimeoutMs: number;
  /** `starting` until the first connect succeeds or fails. */
  #state: "starting" | "up" | "down" = "starting";
  #lastError: Error | undefined;
  /** Why the last connection (attempt) ended, for rejections while down. */
  #downCause = "not connected yet";
  /** Shared by the commands sent before the first connection settles. */
  #firstConnect: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  /**
   * Starts connecting in the background and returns at once, also when Redis is
   * down. Commands sent before the first connection settles wait for it (up to
   * `commandTimeoutMs`); later, commands during an outage reject immediately.
   */
  constructor(
    options: RedisStoreOptions,
    logger: Logger = getLogger(["bot", "store", "redis"]),
  ) {
    this.#log = logger;
    this.#address = redisAddress(options);
    this.#password = passwordOf(options);
    this.#commandTimeoutMs = options.commandTimeoutMs ?? 1500;
    const maxDelay = options.maxReconnectDelayMs ?? 5000;
    const redisOptions: RedisOptions = {
      host: options.host,
      port: options.port,
      db: options.db,
      password: options.password,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // A command cut off by a lost connection has already been rejected by its
      // timeout; resending it later would be a ghost write (a SET NX the caller
      // thinks failed).
      autoResendUnfulfilledCommands: false,
      commandTimeout: this.#commandTimeoutMs,
      connectTimeout: options.connectTimeoutMs ?? 2000,
      disconnectTimeout: DISCONNECT_GRACE_MS,
      retryStrategy: (times) =>
        Math.min(50 * 2 ** Math.min(times - 1, 20), maxDelay) + Math.floor(Math.random() * 50),
    };
    this.#client = options.url ? new Redis(options.url, redisOptions) : new Redis(redisOptions);
    // Without an `error` listener, ioredis's EventEmitter would throw connection
    // errors as uncaught exceptions and end the process.
    this.#client.on("error", (err: Error) => {
      this.#lastError = err;
    });
    this.#client.on("close", () => this.#onClose());
    this.#client.on("ready", () => this.#onReady());
  }

  #onClose(): void {
    if (this.#closing) return;
    let cause = this.#lastError?.message ?? "connection closed";
    if (this.#password) cause = cause.replaceAll(this.#password, "[REDACTED]");
    this.#downCause = cause;
    this.#lastError = undefined;
    if (this.#state === "up") {
      this.#log.warn("Redis connection to {address} lost ({cause}); reconnecting in background", {
        address: this.#address,
        cause,
      });
    } else if (this.#state === "starting") {
      this.#log.warn("Redis at {address} is unreachable ({cause}); retrying in background", {
        address: this.#address,
        cause,
      });
    }
    this.#state = "down";
  }

  #onReady(): void {
    if (this.#closing) return;
    this.#lastError = undefined;
    if (this.#state === "down") {
      this.#log.info("Redis connection to {address} is back", { address: this.#address });
    } else {
      this.#log.info("Redis connected at {address}", { address: this.#address });
    }
    this.#state = "up";
  }

  /** Rejects when closed or (after start-up) not connected; waits out the first connect. */
  async #ready(): Promise<Redis> {
    if (this.#closing) throw new Error("RedisStore is closed");
    const client = this.#client;
    if (this.#state === "starting" && client.status !== "ready") {
      this.#firstConnect ??= firstOf(client, ["ready", "close", "end"], this.#commandTimeoutMs);
      await this.#firstConnect;
    }
    if (client.status !== "ready") {
      throw new Error(`Redis at ${this.#address} is unreachable (${this.#downCause})`);
    }
    return client;
  }

  async get(key: string): Promise<string | null> {
    return await (await this.#ready()).get(key);
  }

  /** `SET k v`, or `SET k v EX ttl` (`PX` for a fractional TTL). */
  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    if (ttlSeconds === undefined) {
      await (await this.#ready()).set(key, value);
      return;
    }
    const ms = ttlMilliseconds(ttlSeconds);
    const client = await this.#ready();
    if (Number.isInteger(ttlSeconds)) await client.set(key, value, "EX", ttlSeconds);
    else await client.set(key, value, "PX", ms);
  }

  /** `SET k v EX ttl NX` (`PX` for a fractional TTL). */
  async setIfAbsent(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const ms = ttlMilliseconds(ttlSeconds);
    const client = await this.#ready();
    const reply = Number.isInteger(ttlSeconds)
      ? await client.set(key, value, "EX", ttlSeconds, "NX")
      : await client.set(key, value, "PX", ms, "NX");
    return reply === "OK";
  }

  async delete(key: string): Promise<void> {
    await (await this.#ready()).del(key);
  }

  async deleteIfEquals(key: string, value: string): Promise<boolean> {
    const client = await this.#ready();
    return await client.eval(DELETE_IF_EQUALS, 1, key, value) === 1;
  }

  async expireIfEquals(key: string, value: string, ttlSeconds: number): Promise<boolean> {
    const ms = ttlMilliseconds(ttlSeconds);
    const client = await this.#ready();
    return await client.eval(EXPIRE_IF_EQUALS, 1, key, value, ms) === 1;
  }

  async increment(key: string, by: number, ttlSeconds?: number): Promise<number> {
    const ms = ttlSeconds === undefined ? "" : String(ttlMilliseconds(ttlSeconds));
    const client = await this.#ready();
    return Number(await client.eval(INCREMENT, 1, key, by, ms));
  }

  async add(key: string, by: number, ttlSeconds?: number): Promise<void> {
    await this.increment(key, by, ttlSeconds);
  }

  async counter(key: string): Promise<number> {
    return Number(await this.get(key) ?? 0) || 0;
  }

  async hashSet(key: string, field: string, value: string): Promise<void> {
    await (await this.#ready()).hset(key, field, value);
  }

  async hashDelete(key: string, field: string): Promise<void> {
    await (await this.#ready()).hdel(key, field);
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return await (await this.#ready()).hgetall(key);
  }

  async ping(): Promise<void> {
    await (await this.#ready()).ping();
  }

  /**
   * `QUIT` when connected (falling back to a hard disconnect), otherwise stops the
   * reconnect loop. Resolves once ioredis has let go of its socket and timers.
   * Safe to call twice, and while Redis is down.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const client = this.#client;
    const cap = this.#commandTimeoutMs + DISCONNECT_GRACE_MS + 2000;
    switch (client.status) {
      case "end":
        return;
      case "ready": {
        const ended = firstOf(client, ["end"], cap);
        try {
          await client.quit();
        } catch {
          client.disconnect();
        }
        await ended;
        return;
      }
      case "reconnecting":
      case "close":
        // The socket is already gone: disconnect() cancels the reconnect timer, but
        // ioredis still arms its grace timer on the dead socket; let it run out.
        client.disconnect();
        await new Promise((r) => setTimeout(r, DISCONNECT_GRACE_MS + 20));
        return;
      default: {
        const ended = firstOf(client, ["end"], cap);
        client.disconnect();
        await ended;
      }
    }
  }
}
