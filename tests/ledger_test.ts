/**
 * The ledger settles each answer once, for every outcome: usage (tickets and tokens),
 * the answers metric, /stats. Real usage, stats and metrics over a memory store.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { createLedger } from "../src/ledger.ts";
import { createUsage } from "../src/limits.ts";
import { createStats } from "../src/stats.ts";
import { createMetrics } from "../src/metrics.ts";
import { MemoryStore } from "../src/store/memory.ts";
import type { Answer } from "../src/assistant/assistant.ts";

const USER = 7;
const delivered = { messages: 1, format: "rich", mode: "draft" };
const answer = (status: Answer["status"] = "completed"): Answer => ({
  text: "hi",
  status,
  usage: { inputTokens: 30, outputTokens: 12 },
});

function setup(store = new MemoryStore()) {
  const limits = { maxMessageChars: 4096, maxFileMb: 20, resetHourUtc: 0, answersPerDay: 5 };
  const usage = createUsage({ store, limits, adminIds: [] });
  const stats = createStats({ store, resetHourUtc: 0 });
  const metrics = createMetrics();
  const ledger = createLedger({ usage, stats, metrics, log: getLogger(["test"]) });
  const outcomes = async () => {
    const values = (await metrics.answers.get()).values;
    return Object.fromEntries(values.map((v) => [v.labels.outcome, v.value]));
  };
  return { store, usage, stats, metrics, ledger, outcomes };
}

Deno.test("ledger: a delivered answer keeps its ticket and counts its tokens, once", async () => {
  const { ledger, usage, stats, outcomes } = setup();
  const entry = ledger.begin(USER);
  assert.equal(await entry.admit("question"), undefined);
  entry.asked();
  entry.firstToken();
  entry.answered(answer());
  entry.delivered(delivered);
  await entry.settle();
  await entry.settle();
  const report = await usage.report(USER);
  assert.equal(report.answersToday, 1);
  assert.equal(report.tokensToday, 42);
  assert.deepEqual(await outcomes(), { completed: 1 });
  const today = await stats.today();
  assert.equal(today.answers, 1);
  assert.equal(today.tokens_in, 30);
  assert.equal(today.tokens_out, 12);
});

Deno.test("ledger: tokens are counted when the delivery throws (the user blocked the bot)", async () => {
  const { ledger, usage, stats, metrics, outcomes } = setup();
  const entry = ledger.begin(USER);
  await entry.admit("question");
  entry.asked();
  entry.answered(answer());
  // No delivered(): deliverAnswer threw, and the handler's finally settles.
  await entry.settle();
  const report = await usage.report(USER);
  assert.equal(report.tokensToday, 42, "OpenAI billed them");
  assert.equal(report.answersToday, 1, "the answer was generated: its ticket is kept");
  assert.deepEqual(await outcomes(), { undelivered: 1 });
  assert.equal((await stats.today()).answers, 0, "not an answer the user got");
  const tokens = (await metrics.tokens.get()).values;
  assert.equal(tokens.find((v) => v.labels.direction === "in")?.value, 30);
});

Deno.test("ledger: a failed answer gives its ticket back", async () => {
  const { ledger, usage, stats, outcomes } = setup();
  const entry = ledger.begin(USER);
  await entry.admit("question");
  entry.asked();
  entry.failed("unavailable", new Error("503"));
  await entry.settle();
  assert.equal((await usage.report(USER)).answersToday, 0);
  assert.deepEqual(await outcomes(), { failed: 1 });
  assert.equal((await stats.today()).errors_openai, 1);
});

Deno.test("ledger: nothing is given back that was not taken", async () => {
  // A refusal takes no ticket.
  const one = setup();
  for (let i = 0; i < 5; i++) {
    const entry = one.ledger.begin(USER);
    await entry.admit("q");
    entry.answered(answer());
    entry.delivered(delivered);
    await entry.settle();
  }
  const refused = one.ledger.begin(USER);
  assert.equal((await refused.admit("q"))?.limit, "answers");
  await refused.settle();
  assert.equal((await one.usage.report(USER)).answersToday, 5, "still 5 after the refusal");
  assert.equal((await one.outcomes()).refused, 1);

  // Limits that could not be checked (the store failed) took no ticket: a failure then
  // gives nothing back, and an answer's tokens are still counted.
  const store = new MemoryStore();
  const two = setup(store);
  const seed = two.ledger.begin(USER);
  await seed.admit("q");
  seed.answered(answer());
  seed.delivered(delivered);
  await seed.settle();
  const increment = store.increment.bind(store);
  store.increment = () => Promise.reject(new Error("store down"));
  const failed = two.ledger.begin(USER);
  assert.equal(await failed.admit("q"), undefined, "admitted without limits");
  store.increment = increment;
  failed.failed("failed", new Error("boom"));
  await failed.settle();
  assert.equal((await two.usage.report(USER)).answersToday, 1, "the seed's ticket is intact");

  store.increment = () => Promise.reject(new Error("store down"));
  const unchecked = two.ledger.begin(USER);
  await unchecked.admit("q");
  store.increment = increment;
  unchecked.answered(answer("aborted"));
  unchecked.delivered(delivered);
  await unchecked.settle();
  const report = await two.usage.report(USER);
  assert.equal(report.answersToday, 1);
  assert.equal(report.tokensToday, 84);
  assert.deepEqual(await two.outcomes(), { completed: 1, failed: 1, aborted: 1 });
});

Deno.test("ledger: audio seconds and files are counted once per answer, also when it failed", async () => {
  const { ledger, usage, stats, outcomes } = setup();
  const entry = ledger.begin(USER);
  assert.equal(await entry.admit("", 12), undefined);
  entry.media({ audioSeconds: 12 });
  entry.media({ files: 1 });
  entry.asked();
  entry.answered(answer());
  entry.delivered(delivered);
  await entry.settle();
  await entry.settle();
  // A second voice note: transcribed (billed), then the model failed.
  const failed = ledger.begin(USER);
  await failed.admit("", 5);
  failed.media({ audioSeconds: 5, files: 1 });
  failed.failed("unavailable", new Error("down"));
  await failed.settle();
  const report = await usage.report(USER);
  assert.equal(report.audioSecondsToday, 17);
  assert.equal(report.filesToday, 2);
  assert.equal(report.answersToday, 1, "the failed answer's ticket was given back");
  const today = await stats.today();
  assert.equal(today.audio_seconds, 17);
  assert.equal(today.files, 2);
  assert.deepEqual(await outcomes(), { completed: 1, failed: 1 });
});

Deno.test("ledger: a media failure gives the ticket back; a download failure is a Telegram error", async () => {
  const { ledger, usage, stats, metrics, outcomes } = setup();
  const entry = ledger.begin(USER);
  await entry.admit("");
  entry.failed("download", new Error("HTTP 502"), "media");
  await entry.settle();
  const stopped = ledger.begin(USER);
  await stopped.admit("");
  stopped.failed("stopped", new Error("stopped"), "media");
  await stopped.settle();
  assert.equal((await usage.report(USER)).answersToday, 0);
  assert.equal((await stats.today()).errors_telegram, 1);
  assert.equal((await stats.today()).errors_openai, 0);
  assert.deepEqual(await outcomes(), { failed: 1, aborted: 1 });
  const errors = (await metrics.errors.get()).values.map((v) => v.labels.kind);
  assert.deepEqual(errors, ["media_download"]);
});

Deno.test("ledger: Telegram calls and subscription checks feed both /metrics and /stats", async () => {
  const { ledger, metrics, stats } = setup();
  ledger.telegramCall("sendMessage", "ok");
  ledger.telegramCall("sendMessage", "429");
  ledger.telegramCall("getChatMember", "error");
  ledger.subscriptionCheck("hit");
  ledger.subscriptionCheck("miss");
  ledger.subscriptionCheck("miss");
  await new Promise((resolve) => setTimeout(resolve, 0));
  const calls = (await metrics.telegramCalls.get()).values;
  assert.equal(calls.find((v) => v.labels.method === "sendMessage")?.value, 2);
  assert.equal((await metrics.telegram429.get()).values[0].value, 1);
  const today = await stats.today();
  assert.equal(today.errors_telegram, 2);
  assert.equal(today.cache_hit, 1);
  assert.equal(today.cache_miss, 2);
});
