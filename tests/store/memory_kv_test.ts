/** What the shared contract cannot show: MemoryStore's clock, sweeping and cap; KV across handles. */
import assert from "node:assert/strict";
import { MemoryStore } from "../../src/store/memory.ts";
import { KvStore } from "../../src/store/kv.ts";

const sanitize = { sanitizeOps: true, sanitizeResources: true, sanitizeExit: true };

Deno.test("memory: expiry follows the injected clock, to the millisecond", sanitize, async () => {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now });
  await store.set("a", "1", 10);
  assert.equal(await store.setIfAbsent("b", "1", 1.5), true);
  now += 1_499;
  assert.equal(await store.setIfAbsent("b", "2", 1), false);
  now += 1;
  assert.equal(await store.setIfAbsent("b", "3", 1), true);
  assert.equal(await store.get("b"), "3");
  now += 8_499;
  assert.equal(await store.get("a"), "1");
  now += 1;
  assert.equal(await store.get("a"), null);
});

Deno.test("memory: writes sweep expired entries, no timers", sanitize, async () => {
  let now = 0;
  const store = new MemoryStore({ now: () => now });
  for (let i = 0; i < 500; i++) await store.set(`old${i}`, "x", 1);
  now = 5_000;
  for (let i = 0; i < 1000; i++) await store.set(`new${i}`, "x");
  // The sweep at 1024 entries dropped the 500 expired ones without anyone reading them.
  assert.equal(store.size, 1000);
});

Deno.test("memory: maxEntries evicts the least recently used", sanitize, async () => {
  const store = new MemoryStore({ maxEntries: 3 });
  await store.set("a", "1");
  await store.set("b", "2");
  await store.set("c", "3");
  assert.equal(await store.get("a"), "1"); // a is now the most recently used
  await store.set("d", "4");
  assert.equal(store.size, 3);
  assert.equal(await store.get("b"), null);
  assert.deepEqual(
    await Promise.all(["a", "c", "d"].map((k) => store.get(k))),
    ["1", "3", "4"],
  );
  assert.throws(() => new MemoryStore({ maxEntries: 0 }), RangeError);
});

Deno.test("kv: setIfAbsent is atomic across two handles on one file", sanitize, async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/shared.kv`;
  const one = await KvStore.open(path);
  const two = await KvStore.open(path);
  try {
    for (let round = 0; round < 3; round++) {
      const key = `race:${round}`;
      const results = await Promise.all(
        Array.from(
          { length: 50 },
          (_, i) => (i % 2 ? one : two).setIfAbsent(key, `v${i}`, 60),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1, `round ${round}`);
      const winner = `v${results.indexOf(true)}`;
      assert.equal(await one.get(key), winner);
      assert.equal(await two.get(key), winner);
    }
  } finally {
    await one.close();
    await two.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "kv: an expired entry KV has not deleted yet reads as absent and is taken over",
  sanitize,
  async () => {
    const kv = await Deno.openKv(":memory:");
    const store = new KvStore(kv);
    try {
      // What KV may still hold after the deadline: expireIn deletes only "some time after".
      await kv.set(["s", "stale"], { v: "old", exp: Date.now() - 1000 });
      assert.equal(await store.get("stale"), null);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.setIfAbsent("stale", `v${i}`, 60)),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await store.get("stale"), `v${results.indexOf(true)}`);
      const raw = await kv.get<{ v: string; exp: number | null }>(["s", "stale"]);
      assert.ok(raw.value && raw.value.exp !== null && raw.value.exp > Date.now() + 50_000);
    } finally {
      await store.close();
    }
  },
);

Deno.test("kv: values survive reopening the file", sanitize, async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/data/bot.kv`;
  try {
    const first = await KvStore.open(path);
    await first.set("thread_id:1", "conv_1");
    await first.set("subscription:1", "true", 600);
    await first.close();
    const second = await KvStore.open(path);
    assert.equal(await second.get("thread_id:1"), "conv_1");
    assert.equal(await second.get("subscription:1"), "true");
    await second.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
