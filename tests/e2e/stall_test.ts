/**
 * End-to-end: a model that accepts the request and never sends a word. The bot gives
 * up after OPENAI_FIRST_TOKEN_TIMEOUT, asks once more, then tells the user, and the
 * next message is answered. Nothing here measures time: the test waits for calls.
 */
import assert from "node:assert/strict";
import { withStack } from "../helpers/stack.ts";
import { requestsTo, sentTo, textOf, until } from "../helpers/predicates.ts";
import { allTexts } from "../../src/bot/texts.ts";

Deno.test("stall: no first token → one retry, then the user is told; the next message is answered", () =>
  withStack({ env: { OPENAI_FIRST_TOKEN_TIMEOUT: "2" } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const hold = openai.hold();
    telegram.sendText(user, "are you there?");
    const told = await telegram.waitForCall(
      "sendMessage",
      (c) => c.ok && sentTo(user.id)(c) && textOf(c) === allTexts.en.stalled,
      // Two timeouts of 1 s and whatever a loaded machine adds: a bound, not a measure.
      { timeoutMs: 30_000 },
    );
    // The dropped stream may still hold the conversation when the second ask arrives
    // (the server notices the disconnect a moment later, as OpenAI does): that ask is
    // refused with conversation_locked and the bot sends it again. Such a refusal is not
    // an answer the model started; exactly two are.
    const sent = requestsTo(openai, "/v1/responses");
    const asked = sent.filter((r) => r.status === 200);
    assert.equal(asked.length, 2, "asked once more, and no more");
    for (const refused of sent.filter((r) => r.status !== 200)) {
      assert.equal(refused.error?.code, "conversation_locked", JSON.stringify(refused.error));
    }
    assert.ok(sent.every((r) => (r.body as { input: string }).input === "are you there?"));
    await stack.bot.waitForOutput(/asking once more/);
    await stack.bot.waitForOutput(/failed \(stalled\)/);
    assert.equal(told.params.reply_parameters !== undefined, true, "a reply to the question");
    // Both streams were dropped (the fake notices a disconnect a moment later); only
    // then is the model let go, so a late stream cannot finish behind the bot's back.
    await until(() => openai.aborted >= 2, "the stalled streams to be dropped", 30_000);
    hold.release();
    telegram.sendText(user, "and now?");
    await telegram.waitForCall(
      "sendRichMessage",
      (c) => c.ok && sentTo(user.id)(c) && textOf(c) === "Echo: and now?",
    );
    // Neither stalled attempt left the question in the conversation.
    const conversation = (asked[0].body as { conversation: string }).conversation;
    const items = openai.conversationItems(conversation) as {
      role: string;
      content: { text: string }[];
    }[];
    assert.deepEqual(items.map((i) => [i.role, i.content[0].text]), [
      ["user", "and now?"],
      ["assistant", "Echo: and now?"],
    ]);
    assert.equal(openai.aborted, 2);
  }));
