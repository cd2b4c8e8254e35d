import assert from "node:assert/strict";
import { createUsage, dayOf, type LimitsConfig } from "../src/limits.ts";
import { MemoryStore } from "../src/store/memory.ts";
import { RedisStore } from "../src/store/redis.ts";
import { startRedis } from "./helpers/redis.ts";
import { getLogger } from "@logtape/logtape";

const base: LimitsConfig = { maxMessageChars: 16_000, maxFileMb: 20, resetHourUtc: 0 };
const NOON = Date.UTC(2026, 10, 24, 12, 0, 0);

Deno.test("limits: days end at the reset hour (UTC)", () => {
  assert.equal(dayOf(NOON, 0).endsAt.toISOString(), "2026-11-25T00:00:00.000Z");
  assert.equal(dayOf(NOON, 3).endsAt.toISOString(), "2026-11-25T03:00:00.000Z");
  assert.equal(
    dayOf(Date.UTC(2026, 10, 24, 2), 3).endsAt.toISOString(),
    "2026-11-24T03:00:00.000Z",
  );
  assert.notEqual(dayOf(NOON, 0).day, dayOf(NOON + 12 * 3_600_000, 0).day);
});

Deno.test("limits: a message over the length limit is refused before anything is counted", async () => {
  const store = new MemoryStore();
  const usage = createUsage({ store, limits: { ...base, maxMessageChars: 10 }, adminIds: [] });
  assert.deepEqual(await usage.admit(1, "x".repeat(11)), { limit: "length", max: 10 });
  assert.equal(await usage.admit(1, "😀".repeat(10)), undefined, "characters, not UTF-16 units");
});

Deno.test("limits: answers per day, with refused and failed answers given back", async () => {
  const clock = { t: NOON };
  const usage = createUsage({
    store: new MemoryStore({ now: () => clock.t }),
    limits: { ...base, answersPerDay: 2 },
    adminIds: [99],
    now: () => clock.t,
  });
  assert.equal(await usage.admit(1, "a"), undefined);
  await usage.finish(1, { answered: true, tokens: 10 });
  assert.equal(await usage.admit(1, "b"), undefined);
  await usage.finish(1, { answered: false });
  assert.equal(await usage.admit(1, "c"), undefined, "the failed answer was given back");
  await usage.finish(1, { answered: true });
  const refused = await usage.admit(1, "d");
  assert.equal(refused?.limit, "answers");
  assert.equal(refused?.resetsAt?.toISOString(), "2026-11-25T00:00:00.000Z");
  assert.equal((await usage.report(1)).answersToday, 2);
  for (let i = 0; i < 5; i++) assert.equal(await usage.admit(99, "admin"), undefined);
  clock.t += 12 * 3_600_000;
  assert.equal(await usage.admit(1, "next day"), undefined);
});

Deno.test("limits: tokens per user and the global budget", async () => {
  const usage = createUsage({
    store: new MemoryStore(),
    limits: { ...base, tokensPerDay: 100, globalTokensPerDay: 150 },
    adminIds: [],
    now: () => NOON,
  });
  assert.equal(await usage.admit(1, "a"), undefined);
  await usage.finish(1, { answered: true, tokens: 100 });
  assert.equal((await usage.admit(1, "b"))?.limit, "tokens");
  assert.equal(await usage.admit(2, "a"), undefined);
  await usage.finish(2, { answered: true, tokens: 60 });
  assert.equal((await usage.admit(3, "a"))?.limit, "global");
  assert.equal((await usage.report(1)).tokensToday, 100);
});

Deno.test("limits: flood limit per minute", async () => {
  const clock = { t: NOON };
  const usage = createUsage({
    store: new MemoryStore({ now: () => clock.t }),
    limits: { ...base, messagesPerMinute: 3 },
    adminIds: [],
    now: () => clock.t,
  });
  for (let i = 0; i < 3; i++) assert.equal(await usage.admit(1, "m"), undefined);
  const refused = await usage.admit(1, "m");
  assert.equal(refused?.limit, "flood");
  assert.equal(refused?.resetsAt?.getTime(), NOON + 60_000);
  clock.t += 60_000;
  assert.equal(await usage.admit(1, "m"), undefined);
});

Deno.test("limits: exact under a burst from two instances sharing Redis", async () => {
  const redis = await startRedis();
  const stores = [
    new RedisStore({ url: redis.url }, getLogger(["test"])),
    new RedisStore({ url: redis.url }, getLogger(["test"])),
  ];
  try {
    const limits = { ...base, answersPerDay: 7 };
    const instances = stores.map((store) => createUsage({ store, limits, adminIds: [] }));
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => instances[i % 2].admit(5, `m${i}`)),
    );
    assert.equal(results.filter((r) => r === undefined).length, 7);
    assert.equal((await instances[0].report(5)).answersToday, 7);
  } finally {
    for (const store of stores) await store.close();
    await redis.stop();
  }
});

Deno.test("limits: audio seconds per day refuse a note that would pass them; files are counted", async () => {
  const clock = { t: NOON };
  const usage = createUsage({
    store: new MemoryStore({ now: () => clock.t }),
    limits: { ...base, audioSecondsPerDay: 60 },
    adminIds: [99],
    now: () => clock.t,
  });
  assert.equal(await usage.admit(1, "", 40), undefined);
  await usage.finish(1, { answered: true, tokens: 5, audioSeconds: 40, files: 1 });
  const refusal = await usage.admit(1, "", 30);
  assert.equal(refusal?.limit, "audio");
  assert.equal(refusal?.max, 60);
  assert.equal(refusal?.used, 40);
  assert.equal(refusal?.resetsAt?.toISOString(), "2026-11-25T00:00:00.000Z");
  assert.equal(await usage.admit(1, "", 20), undefined, "exactly up to the limit");
  await usage.finish(1, { answered: false, audioSeconds: 20, files: 1 });
  assert.equal(await usage.admit(1, "text is not audio"), undefined);
  assert.equal(await usage.admit(99, "", 600), undefined, "admins are exempt");
  const report = await usage.report(1);
  assert.equal(
    report.audioSecondsToday,
    60,
    "transcribed audio counts even when the answer failed",
  );
  assert.equal(report.filesToday, 2);
  clock.t += 12 * 3_600_000;
  assert.equal(await usage.admit(1, "", 30), undefined, "a new day");
});
