/**
 * End-to-end: what goes wrong in production (restarts, rate limits, upstream errors,
 * Redis outages, huge answers, rejected formatting) and what the user sees then.
 */
import assert from "node:assert/strict";
import { assertWholeLongAnswer, longAnswer } from "../helpers/answers.ts";
import { freePort, withStack } from "../helpers/stack.ts";
import { spawnBot } from "../helpers/bot_process.ts";
import { conversationsUsed, repliedTo, requestsTo, says, sentTo } from "../helpers/predicates.ts";
import { FakeTelegram } from "../fakes/telegram.ts";

for (const redis of [false, true]) {
  Deno.test(`the conversation survives a restart (${redis ? "Redis" : "embedded KV"})`, () =>
    withStack({ redis }, async (stack) => {
      const { telegram, openai } = stack;
      const user = stack.subscriber();
      telegram.sendText(user, "remember me");
      await telegram.waitForCall("sendRichMessage", says(/Echo: remember me/));
      await stack.restartBot();
      telegram.sendText(user, "still there?");
      await telegram.waitForCall("sendRichMessage", says(/Echo: still there\?/));
      const [first, second] = conversationsUsed(openai);
      assert.equal(second, first);
      assert.equal(requestsTo(openai, "/v1/conversations").length, 1);
    }));
}

Deno.test("Telegram 429 on the answer's message is waited out and the answer arrives", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    telegram.failNext("sendRichMessage", {
      error_code: 429,
      description: "Too Many Requests: retry after 1",
      parameters: { retry_after: 1 },
    });
    telegram.sendText(user, "patience");
    const ok = await telegram.waitForCall(
      "sendRichMessage",
      (c) => c.ok && says(/Echo: patience/)(c),
    );
    const attempts = telegram.callsTo("sendRichMessage").filter(says(/Echo: patience/));
    assert.equal(attempts.length, 2);
    assert.ok(ok.at - attempts[0].at >= 900, "waited for retry_after");
  }));

Deno.test("OpenAI 429 and 500 are retried; a lasting outage gets a friendly error", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    openai.failNext("/v1/responses", 429, 1, { retryAfterSeconds: 0 });
    openai.failNext("/v1/responses", 500, 1);
    telegram.sendText(user, "retry me");
    await telegram.waitForCall("sendRichMessage", says(/Echo: retry me/), { timeoutMs: 15_000 });
    assert.equal(requestsTo(openai, "/v1/responses").length, 3);

    openai.failNext("/v1/responses", 500, 10);
    const { message } = telegram.sendText(user, "doomed");
    const error = await telegram.waitForCall("sendMessage", says(/temporarily unavailable/), {
      timeoutMs: 30_000,
    });
    // The error answers the very message that failed, so the user knows what to resend.
    assert.equal(repliedTo(error), message.message_id);
    await stack.bot.waitForOutput(/Answer for \d+ failed \(unavailable\)/);
  }));

Deno.test("Redis going away mid-run: the bot keeps answering and warns once", () =>
  withStack({ redis: true }, async (stack) => {
    const { telegram, redis } = stack;
    const user = stack.subscriber();
    telegram.sendText(user, "before");
    await telegram.waitForCall("sendRichMessage", says(/Echo: before/));
    await redis!.kill();
    for (const text of ["during one", "during two"]) {
      telegram.sendText(user, text);
      await telegram.waitForCall("sendRichMessage", says(new RegExp(`Echo: ${text}`)), {
        timeoutMs: 15_000,
      });
    }
    const warnings = stack.bot.output().match(/WRN.*[Rr]edis/g) ?? [];
    assert.equal(warnings.length, 1, stack.bot.output());
    await redis!.restart();
    await stack.bot.waitForOutput(/INF.*[Rr]edis.*(back|reconnected|available)/i, 15_000);
    telegram.sendText(user, "after");
    await telegram.waitForCall("sendRichMessage", says(/Echo: after/));
  }));

Deno.test("a 20,000-character answer with code and a table arrives whole, in order (HTML)", () =>
  withStack({ env: { REPLY_FORMAT: "html" } }, async (stack) => {
    // Split at 4096 for classic messages; the rich version is in streaming_test.ts.
    const { telegram, openai } = stack;
    const answer = longAnswer();
    assert.ok(answer.length > 20_000);
    openai.reply = () => answer;
    const user = stack.subscriber();
    telegram.sendText(user, "long please");
    await telegram.waitForCall("sendMessage", says(/The end\./), { timeoutMs: 20_000 });
    const parts = telegram.callsTo("sendMessage").filter((c) => sentTo(user.id)(c) && c.ok);
    assert.ok(parts.length >= 4);
    assertWholeLongAnswer(telegram.chatMessages(user.id).map((m) => m.text).join("\n"));
  }));

Deno.test("formatting Telegram refuses is re-sent as plain text", () =>
  withStack({ env: { REPLY_FORMAT: "html" } }, async (stack) => {
    const { telegram, openai } = stack;
    openai.reply = () => "Some *emphasis* here";
    const user = stack.subscriber();
    telegram.failNext("sendMessage", {
      error_code: 400,
      description: 'Bad Request: can\'t parse entities: Unsupported start tag "i" at byte offset 5',
    });
    telegram.sendText(user, "format");
    const plain = await telegram.waitForCall("sendMessage", (c) => c.ok && says(/emphasis/)(c));
    assert.equal(plain.params.parse_mode, undefined);
    assert.equal(plain.params.text, "Some *emphasis* here");
  }));

Deno.test("the legacy Assistants backend answers through threads and runs", () =>
  withStack({ env: { OPENAI_ASSISTANT_ID: "asst_test" } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    telegram.sendText(user, "old school");
    await telegram.waitForCall("sendRichMessage", says(/Echo: old school/));
    telegram.sendText(user, "again");
    await telegram.waitForCall("sendRichMessage", says(/Echo: again/));
    assert.equal(requestsTo(openai, "/v1/threads").length, 1);
    assert.equal(openai.requests.filter((r) => /\/runs$/.test(r.path)).length, 2);
    telegram.sendText(user, "/history");
    await telegram.waitForCall("sendMessage", says(/You:<\/b> old school/));
  }));

Deno.test("start-up errors: one line naming the variable, exit 1, no secret printed", async () => {
  const telegram = await FakeTelegram.start();
  const dataDir = `data/e2e-${crypto.randomUUID()}`;
  try {
    const missing = spawnBot({
      OPENAI_API_KEY: "sk-secret-value-123456",
      CHANNEL_ID: "@chan_name",
    });
    assert.equal(await missing.exited, 1);
    assert.match(missing.output(), /TELEGRAM_BOT_TOKEN: is required/);
    assert.ok(!missing.output().includes("sk-secret-value-123456"));

    const assistants = spawnBot({
      TELEGRAM_BOT_TOKEN: telegram.token,
      OPENAI_API_KEY: "sk-secret-value-123456",
      CHANNEL_ID: "@chan_name",
      ASSISTANT_ID: "asst_abc123",
    });
    assert.equal(await assistants.exited, 1);
    assert.match(assistants.output(), /ASSISTANT_ID: OpenAI shut the Assistants API down/);

    const wrongToken = spawnBot({
      TELEGRAM_BOT_TOKEN: "999999:WRONG-token_abcdefghijklmnopqrstuvwxyz",
      TELEGRAM_API_ROOT: telegram.apiRoot,
      OPENAI_API_KEY: "sk-secret-value-123456",
      CHANNEL_ID: "@chan_name",
      KV_PATH: `${dataDir}/bot.kv`,
    });
    assert.equal(await wrongToken.exited, 1);
    assert.match(wrongToken.output(), /Telegram rejected TELEGRAM_BOT_TOKEN/);
    assert.ok(!wrongToken.output().includes("WRONG-token_abcdefghijklmnopqrstuvwxyz"));
  } finally {
    await telegram.close();
    await Deno.remove(new URL(`../../${dataDir}`, import.meta.url), { recursive: true })
      .catch(() => {});
  }
});

Deno.test("the same update delivered twice is answered once", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const { update_id, message } = telegram.sendText(user, "only once");
    telegram.pushUpdate({ update_id, message });
    telegram.sendText(user, "next");
    await telegram.waitForCall("sendRichMessage", says(/Echo: next/));
    const answers = telegram.callsTo("sendRichMessage").filter(says(/Echo: only once/));
    assert.equal(answers.length, 1);
    assert.equal(requestsTo(openai, "/v1/responses").length, 2);
    await stack.bot.waitForOutput(new RegExp(`Update ${update_id} was handled before; skipped`));
  }));

Deno.test("Redis unreachable at start: the bot starts, answers, and warns once", () =>
  withStack({ env: { REDIS_URL: `redis://127.0.0.1:${freePort()}` } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    for (const text of ["first", "second"]) {
      telegram.sendText(user, text);
      await telegram.waitForCall("sendRichMessage", says(new RegExp(`Echo: ${text}`)));
    }
    // The conversation continues while Redis is down (kept in process memory).
    const [one, two] = conversationsUsed(stack.openai);
    assert.equal(one, two);
    const warnings = stack.bot.output().match(/WRN.*Redis/g) ?? [];
    assert.equal(warnings.length, 1, stack.bot.output());
  }));
