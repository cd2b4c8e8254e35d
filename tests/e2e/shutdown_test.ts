/**
 * End-to-end: SIGTERM while an answer is being streamed, in polling and in webhook
 * mode. The fake OpenAI holds the stream until the bot has seen the signal, so the
 * answer is certainly still running when shutdown starts.
 */
import assert from "node:assert/strict";
import { type Stack, startStack } from "../helpers/stack.ts";
import type { FakeTelegram, RecordedCall } from "../fakes/telegram.ts";

const mentions = (re: RegExp) => (c: RecordedCall) => c.ok && re.test(JSON.stringify(c.params));

/** Answers delivered so far (plain or rich messages) whose parameters match `re`. */
const answers = (telegram: FakeTelegram, re: RegExp) =>
  [...telegram.callsTo("sendMessage"), ...telegram.callsTo("sendRichMessage")].filter(mentions(re));

/** Updates Telegram still holds for the bot (not confirmed by getUpdates, not acknowledged). */
async function pendingUpdates(telegram: FakeTelegram): Promise<number> {
  const res = await fetch(`${telegram.apiRoot}/bot${telegram.token}/getWebhookInfo`);
  const body = await res.json();
  return body.result.pending_update_count;
}

/** A valid update POSTed straight to the bot's webhook; resolves with the HTTP status. */
async function postUpdate(stack: Stack, text: string): Promise<number> {
  const user = stack.subscriber();
  const res = await fetch(stack.webhook!.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "X-Telegram-Bot-Api-Secret-Token": stack.webhook!.secret,
    },
    body: JSON.stringify({
      update_id: 800_000 + user.id,
      message: {
        message_id: 1,
        date: Math.floor(Date.now() / 1000),
        chat: { id: user.id, type: "private", first_name: user.first_name },
        from: { ...user, is_bot: false },
        text,
      },
    }),
  });
  await res.body?.cancel();
  return res.status;
}

for (const webhook of [false, true]) {
  const mode = webhook ? "webhook" : "polling";

  Deno.test(`shutdown (${mode}): SIGTERM mid-answer; the answer is completed and delivered, exit 0`, async () => {
    const stack = await startStack({ webhook });
    try {
      const { telegram, openai } = stack;
      const user = stack.subscriber();
      const hold = openai.hold();
      telegram.sendText(user, "a question answered during shutdown");
      await hold.waiting;

      const exit = stack.bot.stop("SIGTERM");
      await stack.bot.waitForOutput(/SIGTERM: stopping/);
      if (webhook) {
        // New updates are refused while draining, so Telegram re-sends them later.
        assert.equal(await postUpdate(stack, "too late"), 503);
      }
      hold.release();
      assert.equal(await exit, 0, stack.bot.output());

      assert.equal(answers(telegram, /Echo: a question answered during shutdown/).length, 1);
      assert.equal(answers(telegram, /too late/).length, 0);
      assert.doesNotMatch(stack.bot.output(), /Shutdown timeout/);
      assert.match(stack.bot.output(), /Stopped/);
      // Handled updates are confirmed (polling) or acknowledged (webhook): a restart
      // does not get the answered message again.
      assert.equal(await pendingUpdates(telegram), 0);
    } finally {
      await stack.stop();
    }
  });

  Deno.test(`shutdown (${mode}): an answer that outlives SHUTDOWN_TIMEOUT does not hold the exit`, async () => {
    const stack = await startStack({ webhook, env: { SHUTDOWN_TIMEOUT: "1" } });
    const hold = stack.openai.hold();
    try {
      const user = stack.subscriber();
      stack.telegram.sendText(user, "never finished");
      await hold.waiting;
      const started = Date.now();
      assert.equal(await stack.bot.stop("SIGTERM"), 0, stack.bot.output());
      const seconds = (Date.now() - started) / 1000;
      assert.ok(seconds >= 1 && seconds < 5, `stopped after ${seconds} s with SHUTDOWN_TIMEOUT=1`);
      assert.match(stack.bot.output(), /Shutdown timeout: some answers were cut off/);
    } finally {
      hold.release();
      await stack.stop();
    }
  });
}
