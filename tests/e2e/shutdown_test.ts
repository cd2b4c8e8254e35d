/**
 * End-to-end: SIGTERM while an answer is being streamed, in polling and in webhook
 * mode. The fake OpenAI holds the stream until the bot has seen the signal, so the
 * answer is certainly still running when shutdown starts.
 */
import assert from "node:assert/strict";
import { messageUpdate, postUpdate, withStack } from "../helpers/stack.ts";
import { answers } from "../helpers/predicates.ts";

for (const webhook of [false, true]) {
  const mode = webhook ? "webhook" : "polling";

  Deno.test(`shutdown (${mode}): SIGTERM mid-answer; the answer is completed and delivered, exit 0`, () =>
    withStack({ webhook }, async (stack) => {
      const { telegram, openai } = stack;
      const user = stack.subscriber();
      const hold = openai.hold();
      telegram.sendText(user, "a question answered during shutdown");
      await hold.waiting;

      const exit = stack.bot.stop("SIGTERM");
      await stack.bot.waitForOutput(/SIGTERM: stopping/);
      if (webhook) {
        // New updates are refused while draining, so Telegram re-sends them later.
        const late = messageUpdate(stack.subscriber(), "too late", 800_001);
        assert.equal(await postUpdate(stack, stack.webhook!.url, late), 503);
      }
      hold.release();
      assert.equal(await exit, 0, stack.bot.output());

      assert.equal(answers(telegram, /Echo: a question answered during shutdown/).length, 1);
      assert.equal(answers(telegram, /too late/).length, 0);
      assert.doesNotMatch(stack.bot.output(), /Shutdown timeout/);
      assert.match(stack.bot.output(), /Stopped/);
      // Handled updates are confirmed (polling) or acknowledged (webhook): a restart
      // does not get the answered message again.
      assert.equal(telegram.pendingUpdateCount, 0);
    }));

  Deno.test(`shutdown (${mode}): an answer that outlives SHUTDOWN_TIMEOUT does not hold the exit`, () =>
    withStack({ webhook, env: { SHUTDOWN_TIMEOUT: "1" } }, async (stack) => {
      // Never released: closing the fake OpenAI ends the held stream.
      const hold = stack.openai.hold();
      const user = stack.subscriber();
      stack.telegram.sendText(user, "never finished");
      await hold.waiting;
      const started = Date.now();
      assert.equal(await stack.bot.stop("SIGTERM"), 0, stack.bot.output());
      const seconds = (Date.now() - started) / 1000;
      assert.ok(seconds >= 1 && seconds < 5, `stopped after ${seconds} s with SHUTDOWN_TIMEOUT=1`);
      assert.match(stack.bot.output(), /Shutdown timeout: some answers were cut off/);
    }));
}
