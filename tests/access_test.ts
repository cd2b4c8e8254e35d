import assert from "node:assert/strict";
import { GrammyError } from "grammy";
import type { ChatMember } from "grammy/types";
import { getLogger } from "@logtape/logtape";
import { createAccessChecker, fixFor, isSubscribed } from "../src/access.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { Store } from "../src/store/store.ts";

const user = { id: 1, is_bot: false, first_name: "U" };
const member = (status: string, extra: Record<string, unknown> = {}) =>
  ({ status, user, ...extra }) as unknown as ChatMember;

function notAdmin(): GrammyError {
  return new GrammyError(
    "Call to 'getChatMember' failed!",
    { ok: false, error_code: 400, description: "Bad Request: member list is inaccessible" },
    "getChatMember",
    {},
  );
}

function checker(
  statuses: Record<string, ChatMember | Error>,
  store: Store = new MemoryStore(),
  channels: (string | number)[] = ["@a_chan"],
) {
  const calls: string[] = [];
  const access = createAccessChecker({
    getChatMember: (chat) => {
      calls.push(String(chat));
      const result = statuses[String(chat)];
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
    store,
    channels,
    ttlSeconds: 600,
    negativeTtlSeconds: 60,
    log: getLogger(["test"]),
  });
  return { access, calls, store };
}

Deno.test("gate: statuses that count as subscribed", () => {
  assert.equal(isSubscribed(member("creator")), true);
  assert.equal(isSubscribed(member("administrator")), true);
  assert.equal(isSubscribed(member("member")), true);
  assert.equal(isSubscribed(member("restricted", { is_member: true })), true);
  assert.equal(isSubscribed(member("restricted", { is_member: false })), false);
  assert.equal(isSubscribed(member("left")), false);
  assert.equal(isSubscribed(member("kicked")), false);
});

Deno.test('gate: a positive verdict is cached as "true" under subscription:{id}', async () => {
  const { access, calls, store } = checker({ "@a_chan": member("member") });
  assert.equal(await access.check(1), "allowed");
  assert.equal(await store.get("subscription:1"), "true");
  assert.equal(await access.check(1), "allowed");
  assert.equal(calls.length, 1);
  assert.equal(await access.check(1, { fresh: true }), "allowed");
  assert.equal(calls.length, 2, "fresh bypasses the cache");
});

Deno.test('gate: a negative verdict is cached briefly as "false"', async () => {
  const now = { t: 0 };
  const store = new MemoryStore({ now: () => now.t });
  const { access, calls } = checker({ "@a_chan": member("left") }, store);
  assert.equal(await access.check(1), "denied");
  assert.equal(await store.get("subscription:1"), "false");
  assert.equal(await access.check(1), "denied");
  assert.equal(calls.length, 1);
  now.t += 61_000;
  assert.equal(await store.get("subscription:1"), null, "expires after the negative TTL");
});

Deno.test("gate: every channel is required", async () => {
  const { access } = checker(
    { "@a_chan": member("member"), "-100200": member("left") },
    new MemoryStore(),
    ["@a_chan", -100200],
  );
  assert.equal(await access.check(1), "denied");
});

Deno.test("gate: a Telegram error is 'unavailable', not cached, and not a denial", async () => {
  const { access, store } = checker({ "@a_chan": notAdmin() });
  assert.equal(await access.check(1), "unavailable");
  assert.equal(await store.get("subscription:1"), null);
  assert.match(fixFor("Bad Request: member list is inaccessible"), /administrator/);
  assert.match(fixFor("Bad Request: chat not found"), /CHANNEL_ID/);
});

Deno.test("gate: a failing store only skips the cache", async () => {
  const broken: Store = {
    kind: "broken",
    get: () => Promise.reject(new Error("down")),
    set: () => Promise.reject(new Error("down")),
    setIfAbsent: () => Promise.reject(new Error("down")),
    delete: () => Promise.reject(new Error("down")),
    deleteIfEquals: () => Promise.reject(new Error("down")),
    expireIfEquals: () => Promise.reject(new Error("down")),
    increment: () => Promise.reject(new Error("down")),
    add: () => Promise.reject(new Error("down")),
    counter: () => Promise.reject(new Error("down")),
    hashSet: () => Promise.reject(new Error("down")),
    hashDelete: () => Promise.reject(new Error("down")),
    hashGetAll: () => Promise.reject(new Error("down")),
    ping: () => Promise.reject(new Error("down")),
    close: () => Promise.resolve(),
  };
  const { access, calls } = checker({ "@a_chan": member("member") }, broken);
  assert.equal(await access.check(1), "allowed");
  assert.equal(await access.check(1), "allowed");
  assert.equal(calls.length, 2);
});

Deno.test("gate: CHANNEL_MODE any lets in a subscriber of at least one channel", async () => {
  const { decide } = await import("../src/access.ts");
  assert.equal(decide([true, false], "any"), "allowed");
  assert.equal(decide([false, undefined], "any"), "unavailable");
  assert.equal(decide([false, false], "any"), "denied");
  assert.equal(decide([true, false], "all"), "denied");
  assert.equal(decide([true, undefined], "all"), "unavailable");
  assert.equal(decide([true, true], "all"), "allowed");
});

Deno.test("gate: chat_member updates flip the cached verdict at once", async () => {
  const statuses: Record<string, ChatMember> = { "@a_chan": member("member") };
  const { access, calls, store } = checker(statuses);
  assert.equal(await access.check(1), "allowed");
  const chat = { id: -100555, username: "A_Chan" };
  await access.observe(chat, member("left"));
  assert.equal(await store.get("subscription:1"), "false");
  assert.equal(await access.check(1), "denied", "without waiting for the TTL");
  await access.observe(chat, member("member"));
  assert.equal(await access.check(1), "allowed");
  assert.equal(calls.length, 1, "both verdicts came from the updates");
  await access.observe({ id: -100999, username: "other" }, member("left"));
  assert.equal(await store.get("subscription:1"), "true", "other chats are ignored");
});

Deno.test("gate: with several channels a join only drops the cache", async () => {
  const { access, store } = checker(
    { "@a_chan": member("member"), "-100200": member("member") },
    new MemoryStore(),
    ["@a_chan", -100200],
  );
  await access.observe({ id: -100200 }, member("left"));
  assert.equal(await store.get("subscription:1"), "false", "leaving one of all is decisive");
  await access.observe({ id: -100200 }, member("member"));
  assert.equal(await store.get("subscription:1"), null, "joining one of all needs a re-check");
  assert.equal(await access.check(1), "allowed");
});
