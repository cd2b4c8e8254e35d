/**
 * RedisStore against a real redis-server: Python-compatible keys and TTLs, and
 * behaviour through outages (fail fast, reconnect alone, log once each way).
 */
import assert from "node:assert/strict";
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import { Redis } from "ioredis";
import { RedisStore } from "../../src/store/redis.ts";
import { startRedis, type TestRedis } from "../helpers/redis.ts";

const sanitize = { sanitizeOps: true, sanitizeResources: true, sanitizeExit: true };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Short reconnect backoff so recoveries take well under a second. */
const fast = { maxReconnectDelayMs: 150, commandTimeoutMs: 800 };

/** Captures the records of category `["test", "redis"]` until `stop()`. */
async function captureLogs() {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { test: (r) => records.push(r) },
    loggers: [
      { category: ["test", "redis"], sinks: ["test"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [] },
    ],
  });
  const text = (r: LogRecord) => r.message.map(String).join("");
  return {
    logger: getLogger(["test", "redis"]),
    at: (level: LogRecord["level"]) => records.filter((r) => r.level === level).map(text),
    stop: () => reset(),
  };
}

/** Retries `fn` until it resolves; fails after `ms`. */
async function eventually<T>(fn: () => Promise<T>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(25);
    }
  }
}

/** Time an expected rejection takes, in ms. */
async function rejectionTime(p: Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await assert.rejects(p);
  return performance.now() - t0;
}

async function withRedis(fn: (redis: TestRedis) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  try {
    await fn(redis);
  } finally {
    await redis.stop();
  }
}

Deno.test(
  "redis: keys are the plain strings; set EX and SET NX EX as the Python bot",
  sanitize,
  () =>
    withRedis(async (redis) => {
      const logs = await captureLogs();
      const store = new RedisStore({ url: redis.url }, logs.logger);
      const raw = new Redis(redis.url);
      try {
        await store.set("thread_id:123", "thread_abc");
        assert.equal(await raw.get("thread_id:123"), "thread_abc");
        assert.equal(await raw.ttl("thread_id:123"), -1, "no expiry");

        await store.set("subscription:123", "true", 600);
        assert.equal(await raw.get("subscription:123"), "true");
        const ttl = await raw.ttl("subscription:123");
        assert.ok(ttl > 590 && ttl <= 600, `ttl ${ttl}`);

        await raw.set("subscription:7", "false");
        assert.equal(await store.get("subscription:7"), "false", "reads what others wrote");

        assert.equal(await store.setIfAbsent("update:1", "1", 30), true);
        const nxTtl = await raw.ttl("update:1");
        assert.ok(nxTtl > 25 && nxTtl <= 30, `ttl ${nxTtl}`);

        await store.delete("thread_id:123");
        assert.equal(await raw.exists("thread_id:123"), 0);
        assert.deepEqual(logs.at("warning"), []);
        assert.equal(logs.at("info").length, 1, "one INFO on connect");
      } finally {
        await raw.quit();
        await store.close();
        await logs.stop();
      }
    }),
);

Deno.test(
  "redis: db and password options reach the server",
  sanitize,
  () =>
    withRedis(async (redis) => {
      const logs = await captureLogs();
      const raw = new Redis(redis.url);
      await raw.config("SET", "requirepass", "s3cret-pw");
      await raw.auth("s3cret-pw");
      const byFields = new RedisStore(
        { host: "127.0.0.1", port: redis.port, db: 3, password: "s3cret-pw" },
        logs.logger,
      );
      const byUrl = new RedisStore(
        { url: `redis://:s3cret-pw@127.0.0.1:${redis.port}/4` },
        logs.logger,
      );
      try {
        await byFields.set("k", "fields");
        await byUrl.set("k", "url");
        await raw.select(3);
        assert.equal(await raw.get("k"), "fields");
        await raw.select(4);
        assert.equal(await raw.get("k"), "url");
      } finally {
        await byFields.close();
        await byUrl.close();
        await raw.config("SET", "requirepass", "");
        await raw.quit();
        await logs.stop();
      }
    }),
);

Deno.test(
  "redis: server stopped mid-run → fast rejections, one WARN; back → works, one INFO",
  sanitize,
  () =>
    withRedis(async (redis) => {
      const logs = await captureLogs();
      const store = new RedisStore({ url: redis.url, ...fast }, logs.logger);
      try {
        await store.set("k", "before");
        assert.equal(logs.at("info").length, 1);

        await redis.kill();
        // Several reconnect attempts fail meanwhile; none may add a log line.
        await sleep(400);
        // Rejected at once, not after the command timeout (800 ms here).
        for (let i = 0; i < 5; i++) {
          for (
            const call of [
              () => store.get("k"),
              () => store.set("k", "x", 5),
              () => store.setIfAbsent("n", "x", 5),
              () => store.delete("k"),
              () => store.ping(),
            ]
          ) {
            const ms = await rejectionTime(call());
            assert.ok(ms < 200, `${ms} ms`);
          }
        }
        await sleep(300);
        const warnings = logs.at("warning");
        assert.equal(warnings.length, 1, warnings.join("\n"));
        assert.match(warnings[0], new RegExp(`127\\.0\\.0\\.1:${redis.port}`));

        await redis.restart();
        await eventually(() => store.ping());
        await store.set("k", "after");
        assert.equal(await store.get("k"), "after");
        const infos = logs.at("info");
        assert.equal(infos.length, 2, infos.join("\n"));
        assert.match(infos[1], /back/);
        assert.equal(logs.at("warning").length, 1);
        assert.deepEqual(logs.at("error"), []);
      } finally {
        await store.close();
        await logs.stop();
      }
    }),
);

Deno.test(
  "redis: a hung server → commands time out instead of hanging",
  sanitize,
  () =>
    withRedis(async (redis) => {
      const logs = await captureLogs();
      const store = new RedisStore({ url: redis.url, ...fast }, logs.logger);
      try {
        await store.ping();
        redis.pause();
        const ms = await rejectionTime(store.get("k"));
        assert.ok(ms >= 700 && ms < 2000, `${ms} ms`);
        redis.resume();
        await eventually(() => store.ping());
      } finally {
        redis.resume();
        await store.close();
        await logs.stop();
      }
    }),
);

Deno.test(
  "redis: close while the server is hung still returns",
  sanitize,
  () =>
    withRedis(async (redis) => {
      const logs = await captureLogs();
      const store = new RedisStore({ url: redis.url, ...fast }, logs.logger);
      try {
        await store.ping();
        redis.pause();
        const t0 = performance.now();
        await store.close();
        assert.ok(performance.now() - t0 < 3000);
      } finally {
        redis.resume();
        await store.close();
        await logs.stop();
      }
    }),
);

Deno.test(
  "redis: created while Redis is down → no throw, one WARN, works once it is up",
  sanitize,
  async () => {
    const logs = await captureLogs();
    const redis = await startRedis();
    await redis.stop();
    const password = "pw-never-logged";
    const store = new RedisStore(
      { url: `redis://:${password}@127.0.0.1:${redis.port}`, ...fast },
      logs.logger,
    );
    try {
      // The first call waits for the first connection attempt, which is refused at once.
      assert.ok((await rejectionTime(store.get("k"))) < 500);
      await sleep(400);
      assert.ok((await rejectionTime(store.ping())) < 200);
      const warnings = logs.at("warning");
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], new RegExp(`127\\.0\\.0\\.1:${redis.port}`));

      // The server has no password set; ioredis then only warns and goes on.
      await redis.restart();
      await eventually(() => store.ping());
      await store.set("k", "v");
      assert.equal(await store.get("k"), "v");
      assert.equal(logs.at("warning").length, 1);
      assert.equal(logs.at("info").length, 1);
      const all = [...logs.at("warning"), ...logs.at("info")].join("\n");
      assert.ok(!all.includes(password), all);
      assert.ok(!all.includes("redis://"), all);
    } finally {
      await store.close();
      await redis.stop();
      await logs.stop();
    }
  },
);

Deno.test(
  "redis: close is safe twice, while down, and right after construction",
  sanitize,
  async () => {
    const logs = await captureLogs();
    const redis = await startRedis();
    try {
      // Right after construction: the first connect is still in progress.
      const early = new RedisStore({ url: redis.url, ...fast }, logs.logger);
      await early.close();
      await early.close();
      await assert.rejects(early.get("k"), /closed/);

      // While down and reconnecting.
      const store = new RedisStore({ url: redis.url, ...fast }, logs.logger);
      await store.ping();
      await redis.kill();
      await sleep(200);
      await Promise.all([store.close(), store.close()]);
      await store.close();
      await assert.rejects(store.ping(), /closed/);
      assert.equal(logs.at("warning").length, 1, "the kill; closing logs nothing");
    } finally {
      await redis.stop();
      await logs.stop();
    }
  },
);
