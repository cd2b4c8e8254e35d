/**
 * End-to-end: a bot process killed with SIGKILL while it streams an answer (no
 * shutdown, no cleanup, as with the OOM killer or a power cut) loses nothing: the
 * restarted process takes the message over from the inbox and answers it once. Polling
 * and webhook mode, on the embedded KV file and on Redis.
 */
import assert from "node:assert/strict";
import { spawnBot } from "../helpers/bot_process.ts";
import { type Stack, withStack } from "../helpers/stack.ts";
import { saysTo, sentTo } from "../helpers/predicates.ts";

async function killMidAnswerAndRestart(stack: Stack): Promise<void> {
  const { telegram, openai } = stack;
  const user = stack.subscriber();
  const hold = openai.hold();
  telegram.sendText(user, "first question");
  await hold.waiting; // the answer is streaming: OpenAI has the request
  if (stack.webhook) {
    // Past the webhook's acknowledgement Telegram will not send the update again:
    // only the inbox can bring it back.
    await stack.bot.waitForOutput(/acknowledged, the answer goes on/);
  }
  assert.equal(await stack.bot.stop("SIGKILL"), 137, "killed, not stopped");
  hold.release();

  stack.bot = spawnBot(stack.env);
  await stack.bot.waitForOutput(stack.webhook ? /Webhook ready as @/ : /Polling as @/);
  // On Redis another process must first see the dead one's lease and turn lock lapse.
  await telegram.waitForCall("sendRichMessage", (c) => c.ok && sentTo(user.id)(c), {
    timeoutMs: 30_000,
  });
  // A later message is answered after it, so a second answer to the first would show by then.
  telegram.sendText(user, "second question");
  await telegram.waitForCall("sendRichMessage", saysTo(user.id, /second question/));
  const first = telegram.callsTo("sendRichMessage").filter(saysTo(user.id, /first question/));
  assert.equal(first.length, 1, "answered once");
  // Polling confirmed the update to Telegram: only the inbox can have brought it back.
  // (A webhook request cut by the kill may also be re-sent by Telegram; once either way.)
  if (!stack.webhook) assert.match(stack.bot.output(), /Inbox: taking over 1 unanswered update/);
}

for (const redis of [false, true]) {
  for (const webhook of [false, true]) {
    const name = `${webhook ? "webhook" : "polling"}, ${redis ? "Redis" : "KV"}`;
    Deno.test(`kill -9 mid-answer (${name}): the restarted bot answers the message once`, () =>
      withStack(
        { redis, webhook, env: { LEASE_SECONDS: "2" } },
        killMidAnswerAndRestart,
      ));
  }
}
