/**
 * End-to-end: answers that appear as they are written. The real bot process against
 * the fakes: drafts then one rich message, the fallbacks of an older Bot API server
 * (rich → HTML → plain, drafts → one edited message), long answers, and the stop
 * button and /cancel aborting the upstream request.
 */
import assert from "node:assert/strict";
import { assertWholeLongAnswer, longAnswer } from "../helpers/answers.ts";
import { withStack } from "../helpers/stack.ts";
import {
  conversationsUsed,
  markdownOf,
  repliedTo,
  saysTo,
  sentTo,
  until,
} from "../helpers/predicates.ts";
import { splitForTelegram } from "../../src/bot/split.ts";

/** The methods that put the answer in front of the user. */
const SHOWING = new Set([
  "sendMessageDraft",
  "sendRichMessageDraft",
  "sendRichMessage",
  "sendMessage",
  "editMessageText",
]);

Deno.test("a streamed answer: Thinking… placeholder, drafts as it is written, one rich message", () =>
  withStack({ openai: { timeToFirstTokenMs: 150, tokensPerSecond: 30 } }, async (stack) => {
    const { telegram, openai } = stack;
    const answer = "## Result\n\nThe answer arrives **word by word**, and the drafts follow it " +
      "closely while the model writes; then one rich message keeps it for good. " +
      "That is all there is to it, really.";
    openai.reply = () => answer;
    const user = stack.subscriber();
    const { message } = telegram.sendText(user, "stream please");
    const final = await telegram.waitForCall("sendRichMessage", sentTo(user.id));
    assert.equal(final.ok, true);
    assert.equal(markdownOf(final), answer);
    assert.equal(repliedTo(final), message.message_id);

    const shown = telegram.calls.filter((c) => sentTo(user.id)(c) && SHOWING.has(c.method));
    assert.deepEqual(shown.filter((c) => !c.ok).map((c) => [c.method, c.error]), []);
    // Placeholder first, then rich drafts only, then the final message and nothing after.
    assert.equal(shown[0].method, "sendMessageDraft");
    assert.equal(shown[0].params.text, "");
    assert.equal(shown.at(-1), final);
    const drafts = shown.slice(1, -1);
    assert.ok(drafts.length >= 3, `${drafts.length} drafts`);
    assert.ok(drafts.every((c) => c.method === "sendRichMessageDraft"));
    // Each draft shows a longer beginning of the answer, all under one draft id.
    let previous = "";
    for (const draft of drafts) {
      const text = markdownOf(draft);
      assert.ok(answer.startsWith(text) && text.length >= previous.length, text);
      previous = text;
      assert.equal(draft.params.draft_id, shown[0].params.draft_id);
      assert.equal(draft.params.can_stop, true);
    }
    // Telegram renders the Markdown itself: a heading and bold text, no markup left.
    const [persisted] = telegram.chatMessages(user.id);
    assert.deepEqual(persisted.rich!.blocks[0], { type: "heading", text: "Result", size: 2 });
    assert.ok(!persisted.rich!.text.includes("**"));
    assert.equal(telegram.shownDraft(user.id), undefined);
    await stack.bot.waitForOutput(/Answered \d+ \(completed\).*1 rich message.*draft previews/);
    assert.match(stack.bot.output(), /first text \d+ ms after the first token/);
  }));

Deno.test("an older Bot API server: rich 404 → HTML (remembered), HTML refused → plain", () =>
  withStack({
    telegram: { missingMethods: ["sendRichMessage", "sendRichMessageDraft"] },
    openai: { tokensPerSecond: 20 },
  }, async (stack) => {
    const { telegram, openai } = stack;
    openai.reply = (input) => `Some **bold** answer to ${input}`;
    const user = stack.subscriber();
    telegram.sendText(user, "one");
    const html = await telegram.waitForCall("sendMessage", (c) => c.ok && sentTo(user.id)(c));
    assert.equal(html.params.parse_mode, "HTML");
    assert.equal(html.params.text, "Some <b>bold</b> answer to one");
    // The drafts went HTML as well, after one 404.
    const drafts = telegram.callsTo("sendMessageDraft").filter((c) => c.params.text !== "");
    assert.ok(drafts.length >= 1 && drafts.every((c) => c.params.parse_mode === "HTML"));
    assert.equal(telegram.callsTo("sendRichMessage").length, 1);
    assert.equal(telegram.callsTo("sendRichMessageDraft").length, 1);

    // The next answer does not ask for the missing methods again; this time Telegram
    // refuses the HTML, and the same text goes out plain.
    telegram.failNext("sendMessage", {
      error_code: 400,
      description: 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 5',
    });
    telegram.sendText(user, "two");
    const plain = await telegram.waitForCall(
      "sendMessage",
      saysTo(user.id, /two$/),
    );
    assert.equal(plain.params.parse_mode, undefined);
    assert.equal(plain.params.text, "Some **bold** answer to two");
    assert.equal(telegram.callsTo("sendRichMessage").length, 1);
    assert.equal(telegram.callsTo("sendRichMessageDraft").length, 1);
    await stack.bot.waitForOutput(/no sendRichMessage \(404\)/);
  }));

Deno.test("drafts refused: one message edited at most once a second, rolling over, final complete", () =>
  withStack({
    telegram: { missingMethods: ["sendMessageDraft", "sendRichMessageDraft", "sendRichMessage"] },
    openai: { timeToFirstTokenMs: 50, tokensPerSecond: 400 },
  }, async (stack) => {
    const { telegram, openai } = stack;
    const answer = Array.from(
      { length: 9 },
      (_, i) => `**Step ${i}.** ` + "the quick brown fox jumps over the lazy dog ".repeat(12),
    ).join("\n\n");
    assert.ok(answer.length > 4096);
    openai.reply = () => answer;
    const user = stack.subscriber();
    telegram.sendText(user, "long, on an old server");
    await stack.bot.waitForOutput(/Answered \d+ .*edit previews/, 20_000);
    const calls = telegram.calls.filter((c) =>
      sentTo(user.id)(c) && (c.method === "sendMessage" || c.method === "editMessageText")
    );
    assert.ok(calls.every((c) => c.ok));
    assert.ok(calls.filter((c) => c.method === "editMessageText").length >= 1);
    // One call a second at most: paced by the clock, tested on a manual clock in
    // tests/bot/deliver_test.ts rather than by measuring gaps here.
    // The final state: the answer split exactly as a normal delivery would, nothing lost.
    const messages = telegram.chatMessages(user.id);
    assert.equal(messages.length, splitForTelegram(answer).length);
    const shown = messages.map((m) => m.text).join("\n\n");
    for (let i = 0; i < 9; i++) assert.ok(shown.includes(`Step ${i}.`), `Step ${i} missing`);
    assert.ok(shown.trimEnd().endsWith("lazy dog"));
  }));

Deno.test("a 20,000-character answer with code and tables: drafts, then one rich message, whole", () =>
  withStack({ openai: { tokensPerSecond: 2000 } }, async (stack) => {
    const { telegram, openai } = stack;
    const answer = longAnswer();
    assert.ok(answer.length > 20_000);
    openai.reply = () => answer;
    const user = stack.subscriber();
    telegram.sendText(user, "long please");
    const final = await telegram.waitForCall("sendRichMessage", sentTo(user.id), {
      timeoutMs: 20_000,
    });
    assert.equal(final.ok, true);
    assert.equal(markdownOf(final), answer);
    assert.equal(telegram.callsTo("sendRichMessage").length, 1);
    assert.ok(telegram.callsTo("sendRichMessageDraft").length >= 2);
    const [message] = telegram.chatMessages(user.id);
    const types = message.rich!.blocks.map((b) => b.type);
    assert.deepEqual([types[0], types.at(-3), types.at(-2), types.at(-1)], [
      "heading",
      "pre",
      "table",
      "paragraph",
    ]);
    assertWholeLongAnswer(message.rich!.text);
  }));

Deno.test("the stop button aborts the upstream request, keeps what was written, frees the turn", () =>
  withStack({ openai: { tokensPerSecond: 20 } }, async (stack) => {
    const { telegram, openai } = stack;
    const words = Array.from({ length: 80 }, (_, i) => `w${i}`);
    openai.reply = (input) => input === "next" ? "Next answer." : words.join(" ");
    const user = stack.subscriber();
    telegram.sendText(user, "write a lot");
    await telegram.waitForCall(
      "sendRichMessageDraft",
      saysTo(user.id, /w3/),
    );
    // A message sent meanwhile waits for the running answer.
    telegram.sendText(user, "next");
    telegram.pressStop(user.id);
    const stopped = await telegram.waitForCall("sendRichMessage", sentTo(user.id));
    const text = markdownOf(stopped);
    assert.match(text, /^w0 w1 w2 w3\b[\s\S]*\n\n⏹ Stopped\.$/);
    assert.ok(!text.includes("w79"), "the stream went on after the stop");
    // The turn was freed at once: the queued message is answered next.
    const next = await telegram.waitForCall(
      "sendRichMessage",
      saysTo(user.id, /^Next answer\.$/),
    );
    assert.ok(next.at - stopped.at < 3000);
    assert.equal(openai.aborted, 1);
    // The stopped response never reached the conversation: only "next" and its answer.
    assert.equal(openai.conversationItems(conversationsUsed(openai)[0]).length, 2);
    await stack.bot.waitForOutput(/Stop button in chat \d+ \(draft \d+\): answer stopped/);
  }));

Deno.test("/cancel aborts an answer before its first token; with nothing running it says so", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const hold = openai.hold();
    telegram.sendText(user, "slow question");
    await hold.waiting;
    await telegram.waitForCall(
      "sendMessageDraft",
      (c) => sentTo(user.id)(c) && c.params.text === "",
    );
    telegram.sendText(user, "/cancel");
    const stopped = await telegram.waitForCall("sendRichMessage", sentTo(user.id));
    assert.equal(markdownOf(stopped), "⏹ Stopped.");
    await stack.bot.waitForOutput(/Answered \d+ \(aborted\): 0 chars/);
    // Released, the held stream finds its client gone.
    hold.release();
    await until(() => openai.aborted === 1, "the fake OpenAI to see the request aborted");
    telegram.sendText(user, "/cancel");
    await telegram.waitForCall(
      "sendMessage",
      saysTo(user.id, /Nothing to stop/),
    );
    // /cancel is in both command menus.
    for (const menu of telegram.callsTo("setMyCommands")) {
      const commands = menu.params.commands as { command: string }[];
      assert.ok(commands.some((c) => c.command === "cancel"));
    }
  }));
