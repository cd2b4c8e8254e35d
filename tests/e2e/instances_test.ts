/**
 * End-to-end: two bot processes in webhook mode on one Redis, behind a "load
 * balancer" (this test, POSTing each update to one of them), behave as one bot.
 */
import assert from "node:assert/strict";
import { postUpdate, startSecondInstance, withStack } from "../helpers/stack.ts";
import {
  answers,
  conversationsUsed,
  mentions,
  says,
  saysTo,
  until,
} from "../helpers/predicates.ts";

Deno.test("two instances on one Redis: a burst split across both is answered once each, one turn at a time", () =>
  withStack({
    redis: true,
    webhook: true,
    openai: { timeToFirstTokenMs: 30, tokensPerSecond: 200 },
  }, async (stack) => {
    const { bot: second, url: url2 } = await startSecondInstance(stack);
    const { telegram, openai, webhook } = stack;

    const user = stack.subscriber();
    const updates = Array.from({ length: 6 }, (_, i) => {
      const { update_id, message } = telegram.sendText(user, `burst ${i}`);
      return { update_id, message };
    });
    const targets = [webhook!.url, url2];
    await Promise.all([
      ...updates.map((u, i) => postUpdate(stack, targets[i % 2], u)),
      // Telegram re-sends the first update, and it lands on the other instance.
      postUpdate(stack, targets[1], updates[0]),
    ]);

    for (let i = 0; i < 6; i++) {
      await until(
        () => answers(telegram, new RegExp(`Echo: burst ${i}\\b`)).length > 0,
        `answer ${i}`,
        20_000,
      );
    }
    // Let any duplicate that would come, come.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 6; i++) {
      const finals = answers(telegram, new RegExp(`Echo: burst ${i}\\b`));
      assert.equal(finals.length, 1, `burst ${i} answered exactly once`);
    }
    const conversations = conversationsUsed(openai);
    assert.equal(conversations.length, 6, "one OpenAI call per message, none for the re-sent one");
    assert.equal(new Set(conversations).size, 1, "both instances continue the same conversation");
    // Turns never overlapped: the fake refuses a second response on a busy conversation,
    // and the user would have seen an error.
    const errors = telegram.calls.filter(mentions(/went wrong|unavailable|busy/));
    assert.deepEqual(errors, []);
    // Both instances did real work.
    assert.match(stack.bot.output(), /Answered \d+/);
    assert.match(second.output(), /Answered \d+/);
  }));

Deno.test("two instances: /cancel that lands on the other instance stops the answer", () =>
  withStack({ redis: true, webhook: true }, async (stack) => {
    const { bot: second, url: url2 } = await startSecondInstance(stack);
    const { telegram, openai, webhook } = stack;
    const user = stack.subscriber();
    const hold = openai.hold();
    await postUpdate(stack, webhook!.url, telegram.sendText(user, "a long one"));
    await hold.waiting;
    await postUpdate(stack, url2, telegram.sendText(user, "/cancel"));
    await telegram.waitForCall(
      "sendRichMessage",
      saysTo(user.id, /Stopped/),
      { timeoutMs: 10_000 },
    );
    assert.equal(telegram.callsTo("sendMessage").filter(says(/Nothing to stop/)).length, 0);
    hold.release();
    await second.waitForOutput(/\/cancel from \d+: answer stopped/);
  }));
