/**
 * The inbox's decisions over a memory store with a hand-driven clock: what is recorded,
 * what a sweep takes over and when, in which order, and that only one instance takes
 * each orphan.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import type { Update } from "grammy/types";
import { Inbox } from "../src/inbox.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { keys } from "../src/store/keys.ts";

const log = getLogger(["test"]);
const update = (id: number, user = 1): Update => ({
  update_id: id,
  message: {
    message_id: id,
    date: 0,
    chat: { id: user, type: "private", first_name: "U" },
    from: { id: user, is_bot: false, first_name: "U" },
    text: `m${id}`,
  },
});

/** A memory store on a clock the test moves. */
function clockedStore() {
  const clock = { t: 1_000_000 };
  return { clock, store: new MemoryStore({ now: () => clock.t }) };
}

/** Starts an inbox whose taken-over updates are collected. */
async function started(inbox: Inbox): Promise<number[]> {
  const handled: number[] = [];
  await inbox.start((u) => {
    handled.push(u.update_id);
    return Promise.resolve();
  });
  return handled;
}

Deno.test("inbox: recorded updates stay until done; one process's orphans go to the next, in order", async () => {
  const store = new MemoryStore();
  const first = new Inbox({ store, shared: false, log });
  await first.record([update(12), update(10), update(11)]);
  await first.done(11);
  assert.deepEqual(Object.keys(await store.hashGetAll(keys.inbox)).sort(), ["10", "12"]);
  // The process dies without stopping; the next one (the embedded store serves one) takes over.
  const next = new Inbox({ store, shared: false, log });
  const handled = await started(next);
  assert.deepEqual(handled, [10, 12], "oldest first");
  assert.equal(await next.sweep(), 0, "taken once");
  await next.done(10);
  await next.done(12);
  assert.deepEqual(await store.hashGetAll(keys.inbox), {});
  await next.stop();
});

Deno.test("inbox: a live instance keeps its updates; a silent one's are taken once its lease lapses, by one instance", async () => {
  const { clock, store } = clockedStore();
  const dead = new Inbox({ store, shared: true, log, leaseSeconds: 10 });
  await started(dead);
  await dead.record([update(1), update(2, 2)]);
  const a = new Inbox({ store, shared: true, log, leaseSeconds: 10 });
  const b = new Inbox({ store, shared: true, log, leaseSeconds: 10 });
  const handledA = await started(a);
  const handledB = await started(b);
  assert.equal(await a.sweep(), 0, "the owner's lease is live");
  await dead.stop(); // stops renewing, as a killed process would
  clock.t += 10_001;
  const [takenA, takenB] = await Promise.all([a.sweep(), b.sweep()]);
  assert.equal(takenA + takenB, 2);
  assert.deepEqual([...handledA, ...handledB].sort(), [1, 2], "each taken by exactly one");
  await Promise.all([a.stop(), b.stop()]);
});

Deno.test("inbox: a failed attempt is released and retried; the count of attempts is kept", async () => {
  const { clock, store } = clockedStore();
  const inbox = new Inbox({ store, shared: true, log, leaseSeconds: 10, maxAttempts: 3 });
  const handled = await started(inbox);
  const u = update(5);
  await inbox.record([u]);
  assert.equal(await inbox.failed(5, u), 1);
  assert.equal(await inbox.sweep(), 1, "released: taken again");
  assert.deepEqual(handled, [5]);
  assert.equal(await inbox.failed(5, u), 2);
  assert.equal(await inbox.sweep(), 0, "not before its claim lapses: retries are spaced");
  clock.t += 10_001;
  assert.equal(await inbox.sweep(), 1);
  assert.equal(await inbox.failed(5, u), 3);
  await inbox.stop();
});

Deno.test("inbox: a store that refuses the record does not block the update", async () => {
  const store = new MemoryStore();
  store.hashSet = () => Promise.reject(new Error("down"));
  const inbox = new Inbox({ store, shared: false, log });
  await inbox.record([update(1)]);
  await inbox.done(1);
});
