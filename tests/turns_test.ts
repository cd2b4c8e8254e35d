import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { claim, createTurnLock, isDone, markDone } from "../src/turns.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { KvStore } from "../src/store/kv.ts";
import type { Store } from "../src/store/store.ts";

const log = getLogger(["test"]);
const sanitize = { sanitizeOps: true, sanitizeResources: true };

Deno.test(
  "turns: two 'instances' on one store never overlap a user's turns",
  sanitize,
  async () => {
    const path = await Deno.makeTempFile({ suffix: ".kv" });
    const a = await KvStore.open(path);
    const b = await KvStore.open(path);
    try {
      const locks = [createTurnLock({ store: a, log }), createTurnLock({ store: b, log })];
      let inside = 0;
      let maxInside = 0;
      const order: number[] = [];
      await Promise.all(Array.from({ length: 12 }, async (_, i) => {
        const release = await locks[i % 2].acquire("42");
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 5));
        order.push(i);
        inside--;
        await release();
      }));
      assert.equal(maxInside, 1);
      assert.equal(order.length, 12);
      // Another user's turn is independent.
      const release = await locks[0].acquire("43");
      await release();
    } finally {
      await a.close();
      await b.close();
      await Deno.remove(path);
    }
  },
);

Deno.test("turns: a crashed holder's lock lapses after the TTL", sanitize, async () => {
  const store = new MemoryStore();
  const lock = createTurnLock({ store, log, ttlSeconds: 0.3 });
  // A holder that never releases nor renews: written directly, as a dead process would leave it.
  await store.setIfAbsent("turn:1", "dead-holder", 0.3);
  const started = Date.now();
  const release = await lock.acquire("1");
  const waited = Date.now() - started;
  assert.ok(waited >= 250 && waited < 1500, `waited ${waited} ms`);
  await release();
  assert.equal(await store.get("turn:1"), null);
});

Deno.test("turns: a live holder keeps its lock past the TTL by renewing it", sanitize, async () => {
  const store = new MemoryStore();
  const lock = createTurnLock({ store, log, ttlSeconds: 0.3 });
  const release = await lock.acquire("7");
  await new Promise((r) => setTimeout(r, 700));
  assert.notEqual(await store.get("turn:7"), null, "renewed");
  let second = false;
  const waiting = lock.acquire("7").then((r) => {
    second = true;
    return r;
  });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(second, false);
  await release();
  await (await waiting)();
  assert.equal(second, true);
});

Deno.test("turns: a failing store gives way instead of blocking", sanitize, async () => {
  const down = () => Promise.reject(new Error("store down"));
  const broken = {
    ...new MemoryStore(),
    kind: "broken",
    get: down,
    set: down,
    setIfAbsent: down,
    delete: down,
    deleteIfEquals: down,
    expireIfEquals: down,
    increment: down,
    add: down,
    counter: down,
    ping: down,
    close: () => Promise.resolve(),
  } as unknown as Store;
  const release = await createTurnLock({ store: broken, log }).acquire("1");
  await release();
  assert.equal(await isDone(broken, 1), false);
  assert.equal(await claim(broken, 1), true, "when in doubt, answer rather than drop");
});

Deno.test("turns: done marks and claims", async () => {
  const store = new MemoryStore();
  assert.equal(await isDone(store, 5), false);
  await markDone(store, 5);
  assert.equal(await isDone(store, 5), true);
  assert.equal(await claim(store, 6), true);
  assert.equal(await claim(store, 6), false);
});
