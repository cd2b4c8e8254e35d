/** FallbackStore: its policy against a primary that fails on demand, and with Redis killed. */
import assert from "node:assert/strict";
import { configure, getLogger, type LogRecord, reset } from "@logtape/logtape";
import type { Store } from "../../src/store/store.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { FallbackStore } from "../../src/store/fallback.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { startRedis } from "../helpers/redis.ts";

const sanitize = { sanitizeOps: true, sanitizeResources: true, sanitizeExit: true };

/** A MemoryStore whose every call rejects while `down`, counting calls. */
class FlakyStore implements Store {
  readonly kind = "flaky";
  readonly inner = new MemoryStore();
  down = false;
  calls = 0;
  closed = 0;
  #gate(): Promise<void> {
    this.calls++;
    return this.down ? Promise.reject(new Error("primary down")) : Promise.resolve();
  }
  async get(key: string) {
    await this.#gate();
    return this.inner.get(key);
  }
  async set(key: string, value: string, ttl?: number) {
    await this.#gate();
    return this.inner.set(key, value, ttl);
  }
  async setIfAbsent(key: string, value: string, ttl: number) {
    await this.#gate();
    return this.inner.setIfAbsent(key, value, ttl);
  }
  async delete(key: string) {
    await this.#gate();
    return this.inner.delete(key);
  }
  async deleteIfEquals(key: string, value: string) {
    await this.#gate();
    return this.inner.deleteIfEquals(key, value);
  }
  async expireIfEquals(key: string, value: string, ttl: number) {
    await this.#gate();
    return this.inner.expireIfEquals(key, value, ttl);
  }
  async increment(key: string, by: number, ttl?: number) {
    await this.#gate();
    return this.inner.increment(key, by, ttl);
  }
  async add(key: string, by: number, ttl?: number) {
    await this.#gate();
    return this.inner.add(key, by, ttl);
  }
  async counter(key: string) {
    await this.#gate();
    return this.inner.counter(key);
  }
  async hashSet(key: string, field: string, value: string) {
    await this.#gate();
    return this.inner.hashSet(key, field, value);
  }
  async hashDelete(key: string, field: string) {
    await this.#gate();
    return this.inner.hashDelete(key, field);
  }
  async hashGetAll(key: string) {
    await this.#gate();
    return this.inner.hashGetAll(key);
  }
  ping() {
    return this.#gate();
  }
  close() {
    this.closed++;
    return Promise.resolve();
  }
}

Deno.test("fallback: the primary answers while it is up", sanitize, async () => {
  const primary = new FlakyStore();
  const store = new FallbackStore(primary);
  assert.equal(store.kind, "flaky");
  await store.set("k", "v");
  assert.equal(await primary.inner.get("k"), "v");
  // Another instance changed it in the primary: the primary is the truth.
  await primary.inner.set("k", "other");
  assert.equal(await store.get("k"), "other");
  await primary.inner.delete("k");
  assert.equal(await store.get("k"), null, "no fallback on a plain miss");
  await store.ping();
  await store.close();
  await store.close();
  assert.equal(primary.closed, 2);
});

Deno.test(
  "fallback: while the primary is down, memory answers and writes succeed",
  sanitize,
  async () => {
    const primary = new FlakyStore();
    const store = new FallbackStore(primary);
    await store.set("thread_id:1", "conv_1");
    assert.equal(await store.setIfAbsent("update:1", "1", 60), true);
    primary.down = true;

    assert.equal(await store.get("thread_id:1"), "conv_1", "written before the outage");
    await store.set("thread_id:2", "conv_2");
    assert.equal(await store.get("thread_id:2"), "conv_2", "written during the outage");
    assert.equal(await store.setIfAbsent("update:1", "1", 60), false, "won before the outage");
    assert.equal(await store.setIfAbsent("update:2", "1", 60), true);
    assert.equal(await store.setIfAbsent("update:2", "1", 60), false);
    await store.delete("thread_id:1");
    assert.equal(await store.get("thread_id:1"), null);
    await assert.rejects(store.ping(), /primary down/);
    await assert.rejects(store.set("k", "v", 0), RangeError);
    await assert.rejects(store.setIfAbsent("k", "v", -1), RangeError);

    primary.down = false;
    assert.equal(await store.get("thread_id:2"), null, "the primary is the truth again");
    assert.equal(await store.get("thread_id:1"), "conv_1", "its delete did not reach the primary");
    await store.close();
  },
);

Deno.test("fallback: memory is capped, least recently used out first", sanitize, async () => {
  const primary = new FlakyStore();
  const store = new FallbackStore(primary, { maxEntries: 100 });
  primary.down = true;
  for (let i = 0; i < 1000; i++) await store.set(`thread_id:${i}`, `c${i}`);
  assert.equal(await store.get("thread_id:0"), null);
  assert.equal(await store.get("thread_id:899"), null);
  assert.equal(await store.get("thread_id:900"), "c900");
  assert.equal(await store.get("thread_id:999"), "c999");
  await store.close();
});

Deno.test(
  "fallback over Redis: keeps answering with Redis killed, and after it is back",
  sanitize,
  async () => {
    const records: LogRecord[] = [];
    await configure({
      reset: true,
      sinks: { test: (r) => records.push(r) },
      loggers: [
        { category: ["test", "fallback"], sinks: ["test"], lowestLevel: "debug" },
        { category: ["logtape", "meta"], sinks: [] },
      ],
    });
    const redis = await startRedis();
    const store = new FallbackStore(
      new RedisStore(
        { url: redis.url, maxReconnectDelayMs: 150, commandTimeoutMs: 800 },
        getLogger(["test", "fallback"]),
      ),
    );
    try {
      await store.set("thread_id:1", "conv_1");
      await store.set("subscription:1", "true", 600);
      await redis.kill();

      const t0 = performance.now();
      assert.equal(await store.get("thread_id:1"), "conv_1");
      assert.equal(await store.get("subscription:1"), "true");
      await store.set("thread_id:2", "conv_2");
      assert.equal(await store.get("thread_id:2"), "conv_2");
      assert.equal(await store.setIfAbsent("update:9", "1", 60), true);
      assert.equal(await store.setIfAbsent("update:9", "1", 60), false);
      assert.ok(performance.now() - t0 < 500, "no waiting on the dead primary");
      await assert.rejects(store.ping());

      await redis.restart();
      const deadline = Date.now() + 5000;
      while (await store.ping().then(() => false, () => true)) {
        assert.ok(Date.now() < deadline, "Redis did not come back");
        await new Promise((r) => setTimeout(r, 25));
      }
      // The restarted server is empty (no persistence): new writes land in Redis again.
      await store.set("thread_id:3", "conv_3");
      assert.equal(await store.get("thread_id:3"), "conv_3");
      assert.equal(records.filter((r) => r.level === "warning").length, 1);
    } finally {
      await store.close();
      await redis.stop();
      await reset();
    }
  },
);
