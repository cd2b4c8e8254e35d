import assert from "node:assert/strict";
import { createStats } from "../src/stats.ts";
import { MemoryStore } from "../src/store/memory.ts";

Deno.test("stats: users today and in total, counters per day", async () => {
  const clock = { t: Date.UTC(2026, 10, 24, 12) };
  const store = new MemoryStore({ now: () => clock.t });
  const stats = createStats({ store, resetHourUtc: 0, now: () => clock.t });
  await Promise.all([stats.seen(1), stats.seen(1), stats.seen(2)]);
  await stats.count("answers");
  await stats.count("tokens_in", 120);
  await stats.count("tokens_out", 30);
  await stats.count("cache_hit", 3);
  await stats.count("errors_openai");
  let report = await stats.today();
  assert.equal(report.users_today, 2);
  assert.equal(report.users_total, 2);
  assert.equal(report.answers, 1);
  assert.equal(report.tokens_in, 120);
  assert.equal(report.cache_hit, 3);
  assert.equal(report.errors_openai, 1);
  assert.equal(report.errors_telegram, 0);

  clock.t += 24 * 3_600_000;
  await stats.seen(1);
  await stats.seen(3);
  report = await stats.today();
  assert.equal(report.users_today, 2);
  assert.equal(report.users_total, 3);
  assert.equal(report.answers, 0, "a new day starts from zero");
});
