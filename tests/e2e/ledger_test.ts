/**
 * End-to-end: the chat handler settles its ledger whatever happens to the delivery.
 * An answer whose final message cannot be delivered (the user blocked the bot while
 * it streamed) still counts the tokens OpenAI billed.
 */
import assert from "node:assert/strict";
import { withStack } from "../helpers/stack.ts";
import { saysTo, sentTo, textOf } from "../helpers/predicates.ts";

Deno.test("a blocked user's undelivered answer still counts its tokens", () =>
  withStack({}, async ({ telegram, openai, subscriber }) => {
    const user = subscriber();
    const hold = openai.hold();
    telegram.sendText(user, "a question");
    await hold.waiting;
    telegram.blockBot(user.id);
    hold.release();
    const refused = await telegram.waitForCall("sendRichMessage", sentTo(user.id));
    assert.equal(refused.ok, false, "the final message was refused with 403");

    telegram.blockBot(user.id, false);
    telegram.sendText(user, "/usage");
    const usage = await telegram.waitForCall("sendMessage", saysTo(user.id, /tokens:/));
    const tokens = Number(/tokens: ([\d,]+)/.exec(textOf(usage))![1].replaceAll(",", ""));
    assert.ok(tokens > 0, textOf(usage));
    assert.match(textOf(usage), /answers: 1\b/);
  }));
