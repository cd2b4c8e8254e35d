/**
 * End-to-end: the real bot process against fake Telegram and OpenAI servers, as a
 * subscriber experiences it.
 */
import assert from "node:assert/strict";
import { CHANNEL, withStack } from "../helpers/stack.ts";
import {
  markdownOf,
  modelRequests,
  repliedTo,
  requestsTo,
  says,
  saysTo,
  sentTo,
  textOf,
} from "../helpers/predicates.ts";

Deno.test("a subscriber asks and gets the assistant's answer, formatted", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    openai.reply = (input) => `**Bold** answer to: ${input}`;
    const user = stack.subscriber();
    telegram.sendText(user, "hello there");
    const call = await telegram.waitForCall(
      "sendRichMessage",
      saysTo(user.id, /answer to/),
    );
    assert.equal(call.ok, true);
    // The assistant's Markdown goes to Telegram as is, and Telegram renders the bold.
    assert.equal(markdownOf(call), "**Bold** answer to: hello there");
    assert.deepEqual(telegram.chatMessages(user.id).at(-1)!.rich!.blocks, [
      { type: "paragraph", text: [{ type: "bold", text: "Bold" }, " answer to: hello there"] },
    ]);
    // A typing indicator was shown while waiting.
    assert.ok(telegram.callsTo("sendChatAction").some(sentTo(user.id)));
    // The conversation at OpenAI holds both sides; the bot keeps no copy.
    const responses = requestsTo(openai, "/v1/responses");
    assert.equal(responses.length, 1);
    const body = responses[0].body as { model: string; conversation: string; stream: boolean };
    assert.equal(body.model, "gpt-test");
    assert.equal(body.stream, true);
    assert.match(body.conversation, /^conv_/);
    assert.equal(openai.conversationItems(body.conversation).length, 2);
  }));

Deno.test("commands: /start, /help, /history, /export, /export md, /reset", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber(undefined, "ru");
    telegram.sendText(user, "/start");
    const welcome = await telegram.waitForCall("sendMessage", sentTo(user.id));
    assert.match(textOf(welcome), /Привет/);

    telegram.sendText(user, "/help");
    await telegram.waitForCall("sendMessage", says(/\/export/));

    telegram.sendText(user, "/history");
    await telegram.waitForCall(
      "sendMessage",
      says(/Сообщений пока нет/),
    );

    telegram.sendText(user, "first question");
    await telegram.waitForCall("sendRichMessage", says(/Echo: first question/));

    telegram.sendText(user, "/history");
    const history = await telegram.waitForCall(
      "sendMessage",
      says(/Последние сообщения/),
    );
    assert.match(textOf(history), /Вы:<\/b> first question/);
    assert.match(textOf(history), /Ассистент:<\/b> Echo: first question/);

    telegram.sendText(user, "/export");
    const doc = await telegram.waitForCall("sendDocument", sentTo(user.id));
    assert.equal(doc.ok, true);
    const txt = telegram.chatMessages(user.id).find((m) => m.document)!.document!;
    assert.match(txt.file_name, /^conversation-\d{4}-\d{2}-\d{2}\.txt$/);
    const content = new TextDecoder().decode(txt.content);
    assert.match(content, /Вы.*:\nfirst question/);
    assert.match(content, /Ассистент.*:\nEcho: first question/);

    telegram.sendText(user, "/export md");
    await telegram.waitForCalls("sendDocument", 2);
    const md = telegram.chatMessages(user.id).filter((m) => m.document)[1].document!;
    assert.match(md.file_name, /\.md$/);
    assert.match(new TextDecoder().decode(md.content), /^# /);

    const before = requestsTo(openai, "/v1/conversations").length;
    telegram.sendText(user, "/reset");
    await telegram.waitForCall("sendMessage", says(/новый разговор/));
    telegram.sendText(user, "second");
    await telegram.waitForCall("sendRichMessage", says(/Echo: second/));
    const after = requestsTo(openai, "/v1/conversations").length;
    assert.equal(after, before + 1, "a new conversation is started after /reset");

    // The command menu is registered in English and Russian.
    const menus = telegram.callsTo("setMyCommands").filter((c) => c.ok);
    assert.deepEqual(menus.map((c) => c.params.language_code ?? "default").sort(), [
      "default",
      "ru",
    ]);
  }));

Deno.test("a non-subscriber is turned away with buttons; Check again lets them in", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = { id: 4242, first_name: "Out", language_code: "en" };
    telegram.sendText(user, "let me in");
    const gate = await telegram.waitForCall("sendMessage", sentTo(user.id));
    assert.match(textOf(gate), /subscribers of Test Channel/);
    const keyboard = (gate.params.reply_markup as {
      inline_keyboard: { text: string; url?: string; callback_data?: string }[][];
    }).inline_keyboard.flat();
    assert.ok(keyboard.some((b) => b.url === `https://t.me/${CHANNEL.username}`));
    const recheck = keyboard.find((b) => b.callback_data)!;
    assert.equal(modelRequests(openai).length, 0, "no tokens spent on a non-subscriber");

    // Still not subscribed: an alert, no welcome.
    const gateMessage = telegram.chatMessages(user.id).at(-1)!;
    telegram.pressButton(
      user,
      { message_id: gateMessage.message_id, chat: { id: user.id } },
      recheck.callback_data!,
    );
    const alert = await telegram.waitForCall("answerCallbackQuery");
    assert.match(textOf(alert), /Still not subscribed/);

    // Joins; the negative cache does not delay them.
    telegram.setMember(`@${CHANNEL.username}`, user.id, "member");
    telegram.setMember(CHANNEL.id, user.id, "member");
    telegram.pressButton(
      user,
      { message_id: gateMessage.message_id, chat: { id: user.id } },
      recheck.callback_data!,
    );
    await telegram.waitForCall(
      "editMessageText",
      says(/AI assistant/),
    );
    telegram.sendText(user, "now?");
    await telegram.waitForCall("sendRichMessage", says(/Echo: now\?/));
  }));

Deno.test("restricted members count only with is_member; left and kicked do not", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const cases = [
      { id: 501, status: "restricted", isMember: true, allowed: true },
      { id: 502, status: "restricted", isMember: false, allowed: false },
      { id: 503, status: "kicked", allowed: false },
      { id: 504, status: "administrator", allowed: true },
    ];
    for (const c of cases) {
      telegram.setMember(`@${CHANNEL.username}`, c.id, c.status, c.isMember);
      telegram.setMember(CHANNEL.id, c.id, c.status, c.isMember);
      telegram.sendText({ id: c.id, language_code: "en" }, "hi");
    }
    for (const c of cases) {
      // Subscribers get the answer (a rich message), the others the gate (a classic one).
      const call = c.allowed
        ? await telegram.waitForCall("sendRichMessage", sentTo(c.id))
        : await telegram.waitForCall("sendMessage", sentTo(c.id));
      assert.equal(/Echo: hi/.test(textOf(call)), c.allowed, `user ${c.id} (${c.status})`);
    }
    const answered = telegram.callsTo("sendRichMessage").map((call) => call.params.chat_id);
    assert.deepEqual(answered.sort(), cases.filter((c) => c.allowed).map((c) => c.id).sort());
  }));

Deno.test("the bot not being a channel admin: a polite 'unavailable', an operator error, no false 'not subscribed'", () =>
  withStack({ botIsAdmin: false }, async (stack) => {
    const { telegram } = stack;
    const user = { id: 777, language_code: "en" };
    telegram.sendText(user, "hi");
    const call = await telegram.waitForCall("sendMessage", sentTo(user.id));
    assert.match(textOf(call), /can't check subscriptions right now/);
    await stack.bot.waitForOutput(/make the bot an administrator of the channel/);
    // Not cached: once the bot is made admin, the same user gets in.
    telegram.addChannel({ ...CHANNEL, botIsAdmin: true });
    telegram.setMember(`@${CHANNEL.username}`, user.id, "member");
    telegram.sendText(user, "again");
    await telegram.waitForCall("sendRichMessage", says(/Echo: again/));
  }));

Deno.test("subscription checks are cached: one getChatMember for several messages", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    for (const text of ["one", "two", "three"]) {
      telegram.sendText(user, text);
      await telegram.waitForCall("sendRichMessage", says(new RegExp(`Echo: ${text}`)));
    }
    const checks = telegram.callsTo("getChatMember").filter((c) => c.params.user_id === user.id);
    assert.equal(checks.length, 1);
  }));

Deno.test("a burst from one user is answered in order, one turn at a time", () =>
  withStack({ openai: { timeToFirstTokenMs: 100, tokensPerSecond: 200 } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const texts = ["m1", "m2", "m3", "m4", "m5"];
    for (const text of texts) telegram.sendText(user, text);
    const replies = await telegram.waitForCalls(
      "sendRichMessage",
      5,
      (c) => sentTo(user.id)(c) && markdownOf(c).startsWith("Echo"),
      { timeoutMs: 20_000 },
    );
    assert.deepEqual(replies.map(markdownOf), texts.map((t) => `Echo: ${t}`));
    // Each answer replies to its own message.
    const ids = replies.map(repliedTo);
    assert.deepEqual(ids, [...ids].sort((a, b) => a! - b!));
    // No "conversation busy" error reached OpenAI or the user.
    assert.equal(requestsTo(openai, "/v1/responses").length, 5);
    assert.ok(!telegram.calls.some(says(/went wrong|unavailable/)));
  }));

Deno.test("group chats: commands are pointed to the private chat, chatter costs nothing", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const group = { id: -4001, type: "group" as const, title: "Friends" };
    telegram.sendText(user, "just chatting", group);
    telegram.sendText(user, `/start@${telegram.botUsername}`, group);
    const call = await telegram.waitForCall("sendMessage", sentTo(group.id));
    assert.match(
      textOf(call),
      new RegExp(`private chats only: open @${telegram.botUsername}`),
    );
    assert.equal(telegram.callsTo("sendMessage").filter(sentTo(group.id)).length, 1);
    assert.equal(modelRequests(openai).length, 0);
  }));

Deno.test("a sticker gets a friendly 'not this kind' answer without spending tokens", () =>
  withStack({}, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    telegram.sendSticker(user);
    const call = await telegram.waitForCall("sendMessage", sentTo(user.id));
    assert.match(textOf(call), /can't read this kind of message/);
    assert.equal(modelRequests(openai).length, 0);
  }));
