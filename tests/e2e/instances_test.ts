/**
 * End-to-end: two bot processes in webhook mode on one Redis, behind a "load
 * balancer" (this test, POSTing each update to one of them), behave as one bot.
 */
import assert from "node:assert/strict";
import { postUpdate, startSecondInstance, startStack } from "../helpers/stack.ts";
import type { FakeTelegram, RecordedCall } from "../fakes/telegram.ts";

const ANSWER_METHODS = ["sendMessage", "sendRichMessage", "editMessageText"];
const answersMatching = (telegram: FakeTelegram, re: RegExp): RecordedCall[] =>
  ANSWER_METHODS.flatMap((m) => telegram.callsTo(m)).filter((c) =>
    c.ok && re.test(JSON.stringify(c.params))
  );

async function until(condition: () => boolean, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("two instances on one Redis: a burst split across both is answered once each, one turn at a time", async () => {
  const stack = await startStack({
    redis: true,
    webhook: true,
    openai: { timeToFirstTokenMs: 30, tokensPerSecond: 200 },
  });
  const { bot: second, url: url2 } = await startSecondInstance(stack);
  try {
    const { telegram, openai, webhook } = stack;

    const user = stack.subscriber();
    const updates = Array.from({ length: 6 }, (_, i) => {
      const { update_id, message } = telegram.sendText(user, `burst ${i}`);
      return { update_id, message };
    });
    const targets = [webhook!.url, url2];
    const post = (url: string, update: unknown) => postUpdate(stack, url, update);
    await Promise.all([
      ...updates.map((u, i) => post(targets[i % 2], u)),
      // Telegram re-sends the first update, and it lands on the other instance.
      post(targets[1], updates[0]),
    ]);

    for (let i = 0; i < 6; i++) {
      await until(
        () => answersMatching(telegram, new RegExp(`Echo: burst ${i}\\b`)).length > 0,
        `answer ${i}`,
      );
    }
    // Let any duplicate that would come, come.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 6; i++) {
      const finals = [...telegram.callsTo("sendMessage"), ...telegram.callsTo("sendRichMessage")]
        .filter((c) => c.ok && new RegExp(`Echo: burst ${i}\\b`).test(JSON.stringify(c.params)));
      assert.equal(finals.length, 1, `burst ${i} answered exactly once`);
    }
    const responses = openai.requests.filter((r) => r.path === "/v1/responses");
    assert.equal(responses.length, 6, "one OpenAI call per message, none for the re-sent one");
    const conversations = new Set(
      responses.map((r) => (r.body as { conversation: string }).conversation),
    );
    assert.equal(conversations.size, 1, "both instances continue the same conversation");
    // Turns never overlapped: the fake refuses a second response on a busy conversation,
    // and the user would have seen an error.
    const errors = telegram.calls.filter((c) =>
      /went wrong|unavailable|busy/.test(JSON.stringify(c.params))
    );
    assert.deepEqual(errors, []);
    // Both instances did real work.
    assert.match(stack.bot.output(), /Answered \d+/);
    assert.match(second.output(), /Answered \d+/);
  } finally {
    assert.equal(await second.stop("SIGTERM"), 0, second.output());
    await stack.stop();
  }
});

Deno.test("two instances: /cancel that lands on the other instance stops the answer", async () => {
  const stack = await startStack({ redis: true, webhook: true });
  const { bot: second, url: url2 } = await startSecondInstance(stack);
  try {
    const { telegram, openai, webhook } = stack;
    const post = (url: string, update: unknown) => postUpdate(stack, url, update);
    const user = stack.subscriber();
    const hold = openai.hold();
    await post(webhook!.url, telegram.sendText(user, "a long one"));
    await hold.waiting;
    await post(url2, telegram.sendText(user, "/cancel"));
    const stopped = await telegram.waitForCall(
      "sendRichMessage",
      (c) => c.ok && c.params.chat_id === user.id,
      { timeoutMs: 10_000 },
    );
    assert.match(JSON.stringify(stopped.params), /Stopped/);
    assert.equal(
      telegram.callsTo("sendMessage").filter((c) => /Nothing to stop/.test(String(c.params.text)))
        .length,
      0,
    );
    hold.release();
    await second.waitForOutput(/\/cancel from \d+: answer stopped/);
  } finally {
    assert.equal(await second.stop("SIGTERM"), 0, second.output());
    await stack.stop();
  }
});
