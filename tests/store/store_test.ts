/**
 * One contract for every Store: memory, Deno KV (in memory and on a file), Redis (a
 * real server) and the Redis+memory fallback. Each step gets a fresh store.
 */
import assert from "node:assert/strict";
import type { Store } from "../../src/store/store.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { KvStore } from "../../src/store/kv.ts";
import { RedisStore } from "../../src/store/redis.ts";
import { FallbackStore } from "../../src/store/fallback.ts";
import { startRedis } from "../helpers/redis.ts";
import { getLogger } from "@logtape/logtape";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sanitize = { sanitizeOps: true, sanitizeResources: true, sanitizeExit: true };

interface Backend {
  /** Makes a fresh store; called once per step. */
  make(): Promise<Store>;
  kind: string;
  /** The calls that reject after `close()` (memory has nothing to close). */
  closedRejects: ("get" | "ping")[];
}

/** Registers the contract as steps of one test. `key()` keeps steps apart on a shared backend. */
async function contract(t: Deno.TestContext, backend: Backend): Promise<void> {
  const key = (name: string) => `${name}:${crypto.randomUUID()}`;
  const step = (name: string, fn: (store: Store) => Promise<void>) =>
    t.step(name, async () => {
      const store = await backend.make();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  await step("kind", (store) => {
    assert.equal(store.kind, backend.kind);
    return Promise.resolve();
  });

  await step("get/set/overwrite", async (store) => {
    const k = key("thread_id");
    assert.equal(await store.get(k), null);
    await store.set(k, "conv_1");
    assert.equal(await store.get(k), "conv_1");
    await store.set(k, "conv_2");
    assert.equal(await store.get(k), "conv_2");
    await store.set(k, "");
    assert.equal(await store.get(k), "", "an empty string is a value, not absence");
  });

  await step("ttl expiry; a set without ttl removes the expiry", async (store) => {
    const a = key("subscription");
    const b = key("subscription");
    await store.set(a, "true", 0.2);
    await store.set(b, "true", 0.2);
    await store.set(b, "false");
    assert.equal(await store.get(a), "true");
    await sleep(350);
    assert.equal(await store.get(a), null);
    assert.equal(await store.get(b), "false");
  });

  await step(
    "setIfAbsent: first wins, value kept, free again after expiry or delete",
    async (store) => {
      const k = key("dedupe");
      assert.equal(await store.setIfAbsent(k, "first", 0.2), true);
      assert.equal(await store.setIfAbsent(k, "second", 0.2), false);
      assert.equal(await store.get(k), "first");
      await sleep(350);
      assert.equal(await store.setIfAbsent(k, "third", 60), true);
      assert.equal(await store.get(k), "third");
      await store.delete(k);
      assert.equal(await store.setIfAbsent(k, "fourth", 60), true);
      const plain = key("plain");
      await store.set(plain, "x");
      assert.equal(await store.setIfAbsent(plain, "y", 60), false, "a key without TTL is present");
    },
  );

  await step("setIfAbsent: 50 concurrent calls, exactly one wins", async (store) => {
    const k = key("race");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.setIfAbsent(k, `v${i}`, 60)),
    );
    assert.equal(results.filter(Boolean).length, 1);
    assert.equal(await store.get(k), `v${results.indexOf(true)}`);
  });

  await step("delete: present and absent", async (store) => {
    const k = key("del");
    await store.set(k, "x");
    await store.delete(k);
    assert.equal(await store.get(k), null);
    await store.delete(k);
    await store.delete(key("never"));
  });

  await step("deleteIfEquals / expireIfEquals act only on the expected value", async (store) => {
    const k = key("turn");
    await store.set(k, "owner-a", 0.6);
    assert.equal(await store.deleteIfEquals(k, "owner-b"), false);
    assert.equal(await store.expireIfEquals(k, "owner-b", 60), false);
    assert.equal(await store.get(k), "owner-a");
    assert.equal(await store.expireIfEquals(k, "owner-a", 60), true);
    await sleep(750);
    assert.equal(await store.get(k), "owner-a", "renewed past its first deadline");
    assert.equal(await store.deleteIfEquals(k, "owner-a"), true);
    assert.equal(await store.get(k), null);
    assert.equal(await store.deleteIfEquals(k, "owner-a"), false, "absent: nothing to delete");
    assert.equal(await store.expireIfEquals(k, "owner-a", 60), false);
  });

  await step("increment: atomic under concurrency", async (store) => {
    const k = key("count");
    assert.equal(await store.increment(k, 5, 60), 5);
    const results = await Promise.all(
      Array.from({ length: 40 }, () => store.increment(k, 1, 60)),
    );
    assert.deepEqual(
      [...results].sort((a, b) => a - b),
      Array.from({ length: 40 }, (_, i) => 6 + i),
    );
    assert.equal(await store.get(k), "45");
    assert.equal(await store.increment(key("fresh"), 2), 2, "no TTL: no expiry");
  });

  await step("increment: a counter keeps its first expiry", async (store) => {
    const k = key("daily");
    assert.equal(await store.increment(k, 1, 0.3), 1);
    assert.equal(await store.increment(k, 1, 60), 2);
    await sleep(450);
    assert.equal(await store.get(k), null, "the later call's TTL did not extend the first");
  });

  await step("add/counter: many writers, no lost counts, first expiry kept", async (store) => {
    const k = key("stats");
    assert.equal(await store.counter(k), 0);
    await Promise.all(Array.from({ length: 60 }, () => store.add(k, 2, 60)));
    assert.equal(await store.counter(k), 120);
    const daily = key("daily");
    await store.add(daily, 5, 0.3);
    await store.add(daily, 1, 60);
    assert.equal(await store.counter(daily), 6);
    await sleep(450);
    assert.equal(await store.counter(daily), 0, "expired with the first deadline");
    await store.add(daily, 3, 60);
    assert.equal(await store.counter(daily), 3, "an expired counter starts again");
    await store.delete(daily);
    assert.equal(await store.counter(daily), 0);
  });

  await step("hashes: set, overwrite, list, delete; apart from plain keys", async (store) => {
    const h = key("h");
    assert.deepEqual(await store.hashGetAll(h), {});
    await store.hashSet(h, "1", "one");
    await store.hashSet(h, "2", "two");
    await store.hashSet(h, "1", "uno");
    await store.hashSet(`${h}x`, "9", "other hash");
    assert.deepEqual(await store.hashGetAll(h), { "1": "uno", "2": "two" });
    await store.hashDelete(h, "1");
    await store.hashDelete(h, "absent");
    assert.deepEqual(await store.hashGetAll(h), { "2": "two" });
    await store.hashDelete(h, "2");
    assert.deepEqual(await store.hashGetAll(h), {});
    assert.deepEqual(await store.hashGetAll(`${h}x`), { "9": "other hash" });
  });

  await step("invalid TTLs reject with RangeError", async (store) => {
    const k = key("ttl");
    for (const ttl of [0, -1, NaN, Infinity]) {
      await assert.rejects(store.set(k, "x", ttl), RangeError);
      await assert.rejects(store.setIfAbsent(k, "x", ttl), RangeError);
    }
    assert.equal(await store.get(k), null);
  });

  await step("ping; close twice", async (store) => {
    await store.ping();
    await store.close();
    await store.close();
    if (backend.closedRejects.includes("get")) await assert.rejects(store.get(key("closed")));
    if (backend.closedRejects.includes("ping")) await assert.rejects(store.ping());
  });
}

Deno.test("contract: MemoryStore", sanitize, async (t) => {
  await contract(t, {
    kind: "memory",
    closedRejects: [],
    make: () => Promise.resolve(new MemoryStore()),
  });
});

Deno.test("contract: KvStore :memory:", sanitize, async (t) => {
  await contract(t, {
    kind: "kv",
    closedRejects: ["get", "ping"],
    make: () => KvStore.open(":memory:"),
  });
});

Deno.test("contract: KvStore on a file", sanitize, async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await contract(t, {
      kind: "kv",
      closedRejects: ["get", "ping"],
      make: () => KvStore.open(`${dir}/sub/bot.kv`),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("contract: RedisStore", sanitize, async (t) => {
  const redis = await startRedis();
  const logger = getLogger(["test", "store"]);
  try {
    await contract(t, {
      kind: "redis",
      closedRejects: ["get", "ping"],
      make: () => Promise.resolve(new RedisStore({ url: redis.url }, logger)),
    });
  } finally {
    await redis.stop();
  }
});

Deno.test("contract: FallbackStore over Redis", sanitize, async (t) => {
  const redis = await startRedis();
  const logger = getLogger(["test", "store"]);
  try {
    await contract(t, {
      kind: "redis",
      // ping is the primary's; reads after close fall back to (cleared) memory.
      closedRejects: ["ping"],
      make: () => Promise.resolve(new FallbackStore(new RedisStore({ url: redis.url }, logger))),
    });
  } finally {
    await redis.stop();
  }
});
