import assert from "node:assert/strict";
import { ManualClock } from "./helpers/clock.ts";
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
  const clock = new ManualClock();
  const store = new MemoryStore({ now: () => clock.now() });
  const lock = createTurnLock({ store, log, ttlSeconds: 30, clock });
  // A holder that never releases nor renews: written directly, as a dead process would leave it.
  await store.setIfAbsent("turn:1", "dead-holder", 30);
  let acquired = false;
  const acquiring = lock.acquire("1").then((release) => {
    acquired = true;
    return release;
  });
  await clock.advance(29_000);
  assert.equal(acquired, false, "waits while the dead holder's TTL runs");
  await clock.advance(2_000);
  assert.equal(acquired, true, "taken once the TTL lapsed");
  await (await acquiring)();
  assert.equal(await store.get("turn:1"), null);
});

Deno.test("turns: a live holder keeps its lock past the TTL by renewing it", sanitize, async () => {
  const clock = new ManualClock();
  const store = new MemoryStore({ now: () => clock.now() });
  const lock = createTurnLock({ store, log, ttlSeconds: 30, clock });
  const release = await lock.acquire("7");
  await clock.advance(95_000);
  assert.notEqual(await store.get("turn:7"), null, "renewed, three TTLs later");
  let second = false;
  const waiting = lock.acquire("7").then((r) => {
    second = true;
    return r;
  });
  await clock.advance(60_000);
  assert.equal(second, false, "still held");
  await release();
  await clock.advance(1_000);
  assert.equal(second, true);
  await (await waiting)();
  assert.equal(clock.sleeping, 0, "no renewal left running");
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
