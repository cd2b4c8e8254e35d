/**
 * End-to-end: "done means done". A handler that throws (here: Telegram keeps refusing
 * the final message with 429 until auto-retry gives up) leaves no done mark; the inbox
 * retries the update, and after three failed attempts the user gets the error text.
 */
import assert from "node:assert/strict";
import { withStack } from "../helpers/stack.ts";
import { markdownOf, requestsTo, says, saysTo, sentTo } from "../helpers/predicates.ts";

// auto-retry makes 6 calls (1 + 5 retries) before the handler sees the error.
const CALLS_PER_ATTEMPT = 6;
const tooMany = { error_code: 429, description: "Too Many Requests: retry after 0" };
const env = { LEASE_SECONDS: "2" };

Deno.test("a handler that throws is retried from the inbox and then answers", () =>
  withStack({ env }, async ({ telegram, subscriber, bot }) => {
    const user = subscriber();
    telegram.failNext("sendRichMessage", tooMany, CALLS_PER_ATTEMPT);
    telegram.sendText(user, "hello");
    const answer = await telegram.waitForCall(
      "sendRichMessage",
      (c) => c.ok && sentTo(user.id)(c),
      { timeoutMs: 20_000 },
    );
    assert.match(markdownOf(answer), /Echo: hello/);
    assert.match(bot.output(), /failed \(attempt 1 of 3\); retried later/);
  }));

Deno.test("after three failed attempts the user gets the error text, once", () =>
  withStack({ env }, async ({ telegram, subscriber, bot, openai }) => {
    const user = subscriber();
    telegram.failNext("sendRichMessage", tooMany, 3 * CALLS_PER_ATTEMPT);
    telegram.sendText(user, "hello");
    const error = await telegram.waitForCall(
      "sendMessage",
      (c) => sentTo(user.id)(c) && says(/went wrong/)(c),
      { timeoutMs: 30_000 },
    );
    assert.equal(error.ok, true);
    await bot.waitForOutput(/failed 3 times; the user is told/);
    // The next message is answered normally, and the given-up one is not retried again.
    telegram.sendText(user, "next");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: next/));
    assert.equal(requestsTo(openai, "/v1/responses").length, 4);
  }));

Deno.test("a user who blocked the bot is not retried", () =>
  withStack({ env }, async ({ telegram, subscriber, bot, openai }) => {
    const user = subscriber();
    const hold = openai.hold();
    telegram.sendText(user, "hello");
    await hold.waiting;
    telegram.blockBot(user.id);
    hold.release();
    await bot.waitForOutput(/cannot be reached; not retried/);
    telegram.blockBot(user.id, false);
    telegram.sendText(user, "next");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: next/));
    assert.equal(requestsTo(openai, "/v1/responses").length, 2);
  }));
