/**
 * Tests of the fake Bot API server itself, over real HTTP: with fetch (to see the exact
 * wire answers) and with grammY's own client, as the bot uses it.
 */
import assert from "node:assert/strict";
import { Api, GrammyError, InputFile } from "grammy";
import { FakeTelegram, type FakeUser } from "./telegram.ts";
import { parseHtml } from "./telegram_html.ts";

type Json = Record<string, unknown>;

const alice: FakeUser = { id: 1001, first_name: "Alice", language_code: "en" };
const CHANNEL = { id: -1001234567890, username: "news_channel", title: "News" };

async function withFake(
  fn: (tg: FakeTelegram) => Promise<void>,
  opts?: Parameters<typeof FakeTelegram.start>[0],
): Promise<void> {
  const tg = await FakeTelegram.start(opts);
  try {
    await fn(tg);
  } finally {
    await tg.close();
  }
}

/** Calls a method with a JSON body and returns the HTTP status and the parsed answer. */
async function call(
  tg: FakeTelegram,
  method: string,
  body: Json = {},
  token = tg.token,
): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${tg.apiRoot}/bot${token}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** Asserts an error answer with exactly this description (a Bad Request by default). */
async function assertBad(
  tg: FakeTelegram,
  method: string,
  body: Json,
  description: string,
  code = 400,
): Promise<void> {
  const res = await call(tg, method, body);
  assert.deepEqual(res.body, { ok: false, error_code: code, description });
  assert.equal(res.status, code);
}

/** assertBad for each `[body, description, code?]` in turn. */
async function assertRefused(
  tg: FakeTelegram,
  method: string,
  cases: [Json, string, number?][],
): Promise<void> {
  for (const [body, description, code] of cases) {
    await assertBad(tg, method, body, description, code);
  }
}

const api = (tg: FakeTelegram) => new Api(tg.token, { apiRoot: tg.apiRoot });

/** The GrammyError `p` rejects with; asserts its description when one is given. */
async function grammyError(p: Promise<unknown>, description?: string): Promise<GrammyError> {
  try {
    await p;
  } catch (e) {
    if (!(e instanceof GrammyError)) throw e;
    if (description !== undefined) assert.equal(e.description, description);
    return e;
  }
  assert.fail("expected a GrammyError");
}

Deno.test("getMe through grammY; unknown methods, wrong tokens, case-insensitive names", async () => {
  await withFake(async (tg) => {
    const me = await api(tg).getMe();
    assert.equal(me.id, 123456);
    assert.equal(me.is_bot, true);
    assert.equal(me.username, tg.botUsername);
    assert.equal(typeof me.can_join_groups, "boolean");

    const notFound = { ok: false, error_code: 404, description: "Not Found" };
    assert.deepEqual(await call(tg, "sendPaidMedia", { chat_id: 1 }), {
      status: 404,
      body: notFound,
    });
    // A malformed token is 404; a well-formed one that is not the bot's is 401.
    assert.deepEqual(await call(tg, "getMe", {}, "not-a-token"), { status: 404, body: notFound });
    assert.deepEqual(await call(tg, "getMe", {}, "123456:wrong_TOKEN-abcdefghijklmnopqrstuvwx"), {
      status: 401,
      body: { ok: false, error_code: 401, description: "Unauthorized" },
    });

    assert.equal((await call(tg, "GETME")).body.ok, true);
    // Every call is recorded, the refused ones too.
    assert.deepEqual(tg.callsTo("getme").map((c) => c.error?.error_code ?? 200), [
      200,
      404,
      401,
      200,
    ]);
  });
});

Deno.test("missingMethods answer 404 like an older local Bot API server", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    for (
      const p of [
        api(tg).sendMessageDraft(alice.id, 1, "thinking"),
        api(tg).sendRichMessageDraft(alice.id, 1, { markdown: "x" }),
        api(tg).sendRichMessage(alice.id, { markdown: "x" }),
      ]
    ) {
      assert.equal((await grammyError(p, "Not Found")).error_code, 404);
    }
    // The methods that exist still work.
    await api(tg).sendMessage(alice.id, "plain");
  }, { missingMethods: ["sendMessageDraft", "sendRichMessageDraft", "SENDRICHMESSAGE"] });
});

Deno.test("sendMessage needs a chat the user opened; messages get increasing ids", async () => {
  await withFake(async (tg) => {
    await assertRefused(tg, "sendMessage", [
      [
        { chat_id: alice.id, text: "hi" },
        "Forbidden: bot can't initiate conversation with a user",
        403,
      ],
      [{ chat_id: -42, text: "hi" }, "Bad Request: chat not found"],
      [{ text: "hi" }, "Bad Request: chat_id is empty"],
      [{ chat_id: alice.id }, "Bad Request: message text is empty"],
    ]);

    const { message: incoming } = tg.sendText(alice, "/start");
    assert.deepEqual(incoming.entities, [{ offset: 0, length: 6, type: "bot_command" }]);
    const first = await api(tg).sendMessage(alice.id, "one");
    const second = await api(tg).sendMessage(alice.id, "two", {
      reply_parameters: { message_id: first.message_id },
    });
    assert.equal(first.message_id, (incoming.message_id as number) + 1);
    assert.equal(second.message_id, first.message_id + 1);
    assert.equal(second.from?.id, tg.botId);
    assert.deepEqual(second.chat, { id: alice.id, first_name: "Alice", type: "private" });
    assert.equal(second.reply_to_message?.message_id, first.message_id);
    assert.deepEqual(tg.chatMessages(alice.id).map((m) => m.text), ["one", "two"]);
    await assertBad(
      tg,
      "sendMessage",
      { chat_id: alice.id, text: "x", reply_parameters: { message_id: 999 } },
      "Bad Request: message to be replied not found",
    );

    // A user who blocked the bot: sending fails with 403 until they unblock it.
    tg.blockBot(alice.id);
    await assertBad(
      tg,
      "sendMessage",
      { chat_id: alice.id, text: "x" },
      "Forbidden: bot was blocked by the user",
      403,
    );
    tg.blockBot(alice.id, false);
    await api(tg).sendMessage(alice.id, "three");
  });
});

Deno.test("HTML parse mode: text and entities as Telegram returns them", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    const m = await api(tg).sendMessage(
      alice.id,
      '<b>bold <i>both</i></b> &lt;tag&gt; &amp; &#128512; <a href="https://example.com">link</a>\n' +
        '<pre><code class="language-ts">let x = 1;</code></pre> <code>c</code> ' +
        "<tg-spoiler>s</tg-spoiler> <blockquote>q</blockquote>",
      { parse_mode: "HTML" },
    );
    assert.equal(m.text, "bold both <tag> & 😀 link\nlet x = 1; c s q");
    assert.deepEqual(m.entities, [
      { offset: 0, length: 9, type: "bold" },
      { offset: 5, length: 4, type: "italic" },
      { offset: 21, length: 4, type: "text_link", url: "https://example.com/" },
      { offset: 26, length: 10, type: "pre", language: "ts" },
      { offset: 37, length: 1, type: "code" },
      { offset: 39, length: 1, type: "spoiler" },
      { offset: 41, length: 1, type: "blockquote" },
    ]);
  });
});

Deno.test("HTML parse errors carry Telegram's reasons and byte offsets", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    const cases: [string, string][] = [
      ["<h1>Title</h1>", 'Unsupported start tag "h1" at byte offset 0'],
      ["привет <b>мир", `Can't find end tag corresponding to start tag "b"`],
      ["<b><i>test</b></i>", 'Unmatched end tag at byte offset 10, expected "</i>", found "</b>"'],
      ["2 < 3", 'Unsupported start tag "" at byte offset 2'],
      ["é<br/>", 'Unsupported start tag "br/" at byte offset 2'],
      ["x</b>", "Unexpected end tag at byte offset 1"],
      ['<a href="x"', "Unclosed start tag at byte offset 0"],
    ];
    await assertRefused(tg, "sendMessage", [
      ...cases.map(([text, reason]): [Json, string] => [
        { chat_id: alice.id, text, parse_mode: "HTML" },
        `Bad Request: can't parse entities: ${reason}`,
      ]),
      [
        { chat_id: alice.id, text: "x", parse_mode: "Markdown3" },
        "Bad Request: unsupported parse_mode",
      ],
      [
        { chat_id: alice.id, text: "*x*", parse_mode: "MarkdownV2" },
        "Bad Request: FakeTelegram does not model parse_mode MarkdownV2",
      ],
      // Empty after parsing and trimming is refused by TDLib with its own words.
      [
        { chat_id: alice.id, text: "<b> </b>\n", parse_mode: "HTML" },
        "Bad Request: text must be non-empty",
      ],
    ]);
    // Nothing was delivered.
    assert.equal(tg.chatMessages(alice.id).length, 0);
    assert.equal(tg.callsTo("sendMessage").every((c) => !c.ok), true);
  });
});

Deno.test("the 4096 limit counts UTF-16 units after entity parsing", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    const ok = await api(tg).sendMessage(alice.id, `<b>${"x".repeat(4096)}</b>`, {
      parse_mode: "HTML",
    });
    assert.equal(ok.text?.length, 4096);
    // 2048 emoji are 4096 UTF-16 units (8192 bytes): fine; one more is too long.
    await api(tg).sendMessage(alice.id, "😀".repeat(2048));
    await assertRefused(tg, "sendMessage", [
      [{ chat_id: alice.id, text: "x".repeat(4097) }, "Bad Request: message is too long"],
      [{ chat_id: alice.id, text: "😀".repeat(2048) + "!" }, "Bad Request: message is too long"],
      [{ chat_id: alice.id, text: "   \n " }, "Bad Request: text must be non-empty"],
    ]);
  });
});

Deno.test("inline keyboards are validated like Telegram's", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    const send = (inline_keyboard: unknown) => ({
      chat_id: alice.id,
      text: "pick",
      reply_markup: { inline_keyboard },
    });
    const button = "Bad Request: can't parse inline keyboard button";
    await assertRefused(tg, "sendMessage", [
      [send([[{ text: "b", callback_data: "x".repeat(65) }]]), "Bad Request: BUTTON_DATA_INVALID"],
      [
        send([[{ text: "b", callback_data: "" }]]),
        `${button}: Text buttons are unallowed in the inline keyboard`,
      ],
      [send([[{ callback_data: "x" }]]), `${button}: Can't find field "text"`],
      [
        send([[{ text: "b", url: "not a url" }]]),
        "Bad Request: inline keyboard button URL 'not a url' is invalid: Wrong HTTP URL",
      ],
      [send({ text: "b" }), 'Bad Request: field "inline_keyboard" must be of type Array'],
      [
        send([[{ text: "b", web_app: { url: "https://a.io" } }]]),
        "Bad Request: FakeTelegram does not model web_app buttons",
      ],
    ]);
    const m = await api(tg).sendMessage(alice.id, "pick", {
      reply_markup: {
        inline_keyboard: [[{ text: "Join", url: "https://t.me/news_channel" }, {
          text: "Check",
          callback_data: "x".repeat(64),
        }]],
      },
    });
    assert.deepEqual(m.reply_markup?.inline_keyboard[0][0], {
      text: "Join",
      url: "https://t.me/news_channel",
    });
  });
});

Deno.test("failNext injects a 429 that grammY sees with retry_after", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    tg.failNext("sendMessage", {
      error_code: 429,
      description: "Too Many Requests: retry after 7",
    });
    const err = await grammyError(
      api(tg).sendMessage(alice.id, "first"),
      "Too Many Requests: retry after 7",
    );
    assert.equal(err.error_code, 429);
    assert.deepEqual(err.parameters, { retry_after: 7 });
    const raw = await call(tg, "getMe");
    assert.equal(raw.status, 200);
    await api(tg).sendMessage(alice.id, "second");
    const calls = tg.callsTo("sendMessage");
    assert.deepEqual(calls.map((c) => c.ok), [false, true]);
    assert.deepEqual(calls[0].error, {
      error_code: 429,
      description: "Too Many Requests: retry after 7",
    });
    assert.deepEqual(tg.chatMessages(alice.id).map((m) => m.text), ["second"]);
  });
});

Deno.test("getUpdates: long polling waits for an update; offset confirms", async () => {
  await withFake(async (tg) => {
    const poll = call(tg, "getUpdates", { timeout: 5 });
    await new Promise((r) => setTimeout(r, 100));
    const { update_id } = tg.sendText(alice, "hello");
    const res = await poll;
    const updates = res.body.result as Json[];
    assert.equal(updates.length, 1);
    assert.equal(updates[0].update_id, update_id);
    assert.equal((updates[0].message as Json).text, "hello");
    // Not confirmed yet: delivered again.
    assert.equal(((await call(tg, "getUpdates")).body.result as Json[]).length, 1);
    tg.sendText(alice, "second");
    const next = (await call(tg, "getUpdates", { offset: update_id + 1 })).body.result as Json[];
    assert.deepEqual(next.map((u) => (u.message as Json).text), ["second"]);
    assert.equal(
      ((await call(tg, "getUpdates", { offset: update_id + 2 })).body.result as Json[]).length,
      0,
    );

    // A short timeout runs out with no updates.
    const empty = await call(tg, "getUpdates", { offset: update_id + 2, timeout: 1 });
    assert.deepEqual(empty.body, { ok: true, result: [] });
  });
});

Deno.test("allowed_updates: chat_member updates only when asked for", async () => {
  await withFake(async (tg) => {
    const member = { chat: { id: CHANNEL.id }, from: alice, date: 1 };
    tg.pushUpdate({ chat_member: member });
    assert.equal(((await call(tg, "getUpdates")).body.result as Json[]).length, 0);
    await call(tg, "getUpdates", { allowed_updates: ["message", "chat_member"] });
    tg.pushUpdate({ chat_member: member });
    const updates = (await call(tg, "getUpdates")).body.result as Json[];
    assert.equal(updates.length, 1);
    assert.ok("chat_member" in updates[0]);
  });
});

Deno.test("a second getUpdates ends the first with 409; close() ends a held poll", async () => {
  await withFake(async (tg) => {
    const first = call(tg, "getUpdates", { timeout: 10 });
    await new Promise((r) => setTimeout(r, 50));
    const second = call(tg, "getUpdates", { timeout: 10 });
    assert.deepEqual(await first, {
      status: 409,
      body: {
        ok: false,
        error_code: 409,
        description:
          "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
      },
    });
    await tg.close();
    assert.deepEqual((await second).body, { ok: true, result: [] });
  });
});

Deno.test("webhooks: set, conflict with getUpdates, delivery with secret and retries", async () => {
  const received: { update: Json; secret: string | null }[] = [];
  let failures = 1;
  const receiver = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const update = await req.json();
      if (failures-- > 0) return new Response("down", { status: 500 });
      received.push({ update, secret: req.headers.get("x-telegram-bot-api-secret-token") });
      return new Response("ok");
    },
  );
  try {
    await withFake(async (tg) => {
      const url = `http://127.0.0.1:${receiver.addr.port}/hook`;
      await assertBad(
        tg,
        "setWebhook",
        { url, secret_token: "bad secret!" },
        "Bad Request: secret token contains unallowed characters",
      );
      await new Promise((r) => setTimeout(r, 1000)); // setWebhook is limited to one a second
      assert.deepEqual((await call(tg, "setWebhook", { url, secret_token: "s3cr-et_" })).body, {
        ok: true,
        result: true,
        description: "Webhook was set",
      });
      await assertBad(
        tg,
        "getUpdates",
        {},
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
        409,
      );
      const { update_id } = tg.sendText(alice, "via webhook");
      for (let i = 0; i < 100 && received.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(received.length, 1);
      assert.equal(received[0].secret, "s3cr-et_");
      assert.equal(received[0].update.update_id, update_id);
      assert.equal(tg.pendingUpdateCount, 0);
      assert.equal((await call(tg, "deleteWebhook")).body.description, "Webhook was deleted");
      assert.equal((await call(tg, "getUpdates")).status, 200);
    });
  } finally {
    await receiver.shutdown();
  }
});

Deno.test("multipart sendDocument from grammY's InputFile", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "/export");
    const m = await api(tg).sendDocument(
      alice.id,
      new InputFile(new TextEncoder().encode("hi"), "a.txt"),
      {
        caption: "<b>Your</b> export",
        parse_mode: "HTML",
      },
    );
    assert.equal(m.document?.file_name, "a.txt");
    assert.equal(m.document?.mime_type, "text/plain");
    assert.equal(m.document?.file_size, 2);
    assert.equal(m.caption, "Your export");
    assert.deepEqual(m.caption_entities, [{ offset: 0, length: 4, type: "bold" }]);
    const [doc] = tg.chatMessages(alice.id);
    assert.equal(new TextDecoder().decode(doc.document?.content), "hi");
    const recorded = tg.callsTo("sendDocument")[0];
    assert.equal(recorded.params.chat_id, alice.id);
    assert.match(String(recorded.params.document), /^attach:\/\//);

    await grammyError(
      api(tg).sendDocument(alice.id, new InputFile(new Uint8Array(0), "empty.txt")),
      "Bad Request: file must be non-empty",
    );
    await assertBad(
      tg,
      "sendDocument",
      { chat_id: alice.id, document: "BQACAgIAAxkDAAI0001fake" },
      "Bad Request: FakeTelegram models only uploaded documents",
    );
  });
});

Deno.test("getChatMember: statuses, shapes, and the not-admin error", async () => {
  await withFake(async (tg) => {
    tg.addChannel({ ...CHANNEL, botIsAdmin: true });
    const statuses = ["creator", "administrator", "member", "left", "kicked"];
    statuses.forEach((s, i) => tg.setMember(CHANNEL.id, 2000 + i, s));
    tg.setMember(`@${CHANNEL.username}`, 2100, "restricted", false);
    tg.setMember(CHANNEL.id, 2101, "restricted", true);
    tg.sendText({ id: 2002, first_name: "Mem", username: "mem_user" }, "hi");
    for (const [i, status] of statuses.entries()) {
      const m = await api(tg).getChatMember(CHANNEL.id, 2000 + i);
      assert.equal(m.status, status);
      assert.equal(m.user.id, 2000 + i);
      assert.equal(m.user.is_bot, false);
    }
    assert.deepEqual((await api(tg).getChatMember(CHANNEL.id, 2002)).user, {
      id: 2002,
      is_bot: false,
      first_name: "Mem",
      username: "mem_user",
    });
    const restricted = await api(tg).getChatMember(`@${CHANNEL.username}`, 2100);
    assert.equal(restricted.status, "restricted");
    assert.ok(restricted.status === "restricted" && restricted.is_member === false);
    assert.ok(restricted.status === "restricted" && restricted.can_send_messages === false);
    const member = await api(tg).getChatMember(CHANNEL.id, 2101);
    assert.ok(member.status === "restricted" && member.is_member);
    assert.equal((await api(tg).getChatMember(CHANNEL.id, 9999)).status, "left");
    const admin = await api(tg).getChatMember(CHANNEL.id, 2001);
    assert.ok(admin.status === "administrator" && admin.can_post_messages === true);

    const chat = await api(tg).getChat(`@${CHANNEL.username}`);
    assert.equal(chat.type, "channel");
    assert.equal(chat.title, "News");
    assert.equal(chat.id, CHANNEL.id);

    tg.addChannel({ ...CHANNEL, botIsAdmin: false });
    await grammyError(
      api(tg).getChatMember(CHANNEL.id, 2002),
      "Bad Request: member list is inaccessible",
    );
    await assertRefused(tg, "getChatMember", [
      [{ chat_id: "@nowhere", user_id: 2002 }, "Bad Request: chat not found"],
      [{ chat_id: CHANNEL.id, user_id: "x" }, "Bad Request: invalid user_id specified"],
    ]);
  });
});

Deno.test("callback queries: pressButton, answered once, then too old", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    const m = await api(tg).sendMessage(alice.id, "Subscribe first", {
      reply_markup: { inline_keyboard: [[{ text: "Check again", callback_data: "recheck" }]] },
    });
    assert.throws(() => tg.pressButton(alice, m, "other"), /no button/);
    assert.throws(() => tg.pressButton(alice, { message_id: 99, chat: { id: alice.id } }, "x"));
    const updateId = tg.pressButton(alice, m, "recheck");
    const updates = (await call(tg, "getUpdates")).body.result as Json[];
    const update = updates.find((u) => "callback_query" in u)!;
    assert.equal(update.update_id, updateId);
    const query = update.callback_query as Json;
    assert.equal(query.data, "recheck");
    assert.equal((query.from as Json).id, alice.id);
    assert.equal((query.message as Json).message_id, m.message_id);

    await assertBad(
      tg,
      "answerCallbackQuery",
      { callback_query_id: query.id, text: "x".repeat(201) },
      "Bad Request: MESSAGE_TOO_LONG",
    );
    assert.equal(
      await api(tg).answerCallbackQuery(String(query.id), { text: "Still not subscribed" }),
      true,
    );
    const tooOld =
      "Bad Request: query is too old and response timeout expired or query ID is invalid";
    await assertRefused(tg, "answerCallbackQuery", [
      [{ callback_query_id: query.id }, tooOld],
      [{ callback_query_id: "12345" }, tooOld],
    ]);
  });
});

Deno.test("editMessageText and deleteMessage", async () => {
  await withFake(async (tg) => {
    const { message: incoming } = tg.sendText(alice, "hi");
    const keyboard = { inline_keyboard: [[{ text: "b", callback_data: "d" }]] };
    const m = await api(tg).sendMessage(alice.id, "draft", { reply_markup: keyboard });
    const edit = { chat_id: alice.id, message_id: m.message_id, text: "x" };
    await assertRefused(tg, "editMessageText", [
      [{ ...edit, message_id: 77 }, "Bad Request: message to edit not found"],
      [{ ...edit, message_id: incoming.message_id }, "Bad Request: message can't be edited"],
      [
        { ...edit, text: "draft", reply_markup: keyboard },
        "Bad Request: message is not modified: specified new message content and reply markup " +
        "are exactly the same as a current content and reply markup of the message",
      ],
      // editMessageText reads link_preview_options like sendMessage.
      [
        { ...edit, link_preview_options: "[1]" },
        "Bad Request: object expected as link preview options",
      ],
      [
        { ...edit, link_preview_options: { is_disabled: "yes" } },
        'Bad Request: field "is_disabled" must be of type Boolean',
      ],
    ]);
    // Same text without the markup is a change: the keyboard goes away.
    const edited = await api(tg).editMessageText(alice.id, m.message_id, "<b>final</b>", {
      parse_mode: "HTML",
      link_preview_options: { is_disabled: true },
    });
    assert.ok(edited !== true && "text" in edited && edited.text === "final" && edited.edit_date);
    const [now] = tg.chatMessages(alice.id);
    assert.equal(now.text, "final");
    assert.equal(now.reply_markup, undefined);
    assert.deepEqual(now.entities, [{ offset: 0, length: 5, type: "bold" }]);

    assert.equal(await api(tg).deleteMessage(alice.id, m.message_id), true);
    assert.deepEqual(tg.chatMessages(alice.id), []);
    await assertBad(
      tg,
      "deleteMessage",
      { chat_id: alice.id, message_id: m.message_id },
      "Bad Request: message to delete not found",
    );
  });
});

Deno.test("sendChatAction and setMyCommands", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    assert.equal(await api(tg).sendChatAction(alice.id, "typing"), true);
    await assertBad(
      tg,
      "sendChatAction",
      { chat_id: alice.id, action: "thinking" },
      "Bad Request: wrong parameter action in request",
    );
    const commands = [{ command: "start", description: "go" }];
    await assertRefused(tg, "setMyCommands", [
      [{ commands: [{ command: "Start", description: "go" }] }, "Bad Request: BOT_COMMAND_INVALID"],
      [{ commands, language_code: "rus" }, "Bad Request: invalid language code specified"],
      [
        { commands, scope: { type: "all_private_chats" } },
        "Bad Request: FakeTelegram does not model command scopes",
      ],
    ]);
    const ru = [{ command: "start", description: "Начать" }];
    assert.equal(await api(tg).setMyCommands(ru, { language_code: "ru" }), true);
    assert.equal(await api(tg).setMyCommands([{ command: "start", description: "Start" }]), true);
  });
});

Deno.test("sendMessageDraft: private chats only, non-zero draft_id, drafts recorded", async () => {
  await withFake(async (tg) => {
    const group = { id: -5001, type: "group" as const, title: "G" };
    tg.sendText(alice, "hi");
    tg.sendText(alice, "hi all", group);
    assert.equal(await api(tg).sendMessageDraft(alice.id, 7, ""), true);
    assert.equal(
      await api(tg).sendMessageDraft(alice.id, 7, "<b>Thinking</b> hard", { parse_mode: "HTML" }),
      true,
    );
    await assertRefused(tg, "sendMessageDraft", [
      [{ chat_id: group.id, draft_id: 7, text: "x" }, "Bad Request: TEXTDRAFT_PEER_INVALID"],
      [{ chat_id: alice.id, draft_id: 0, text: "x" }, "Bad Request: draft_id must be non-zero"],
      [
        { chat_id: alice.id, draft_id: 1, text: "x".repeat(4097) },
        "Bad Request: message is too long",
      ],
    ]);
    const drafts = tg.chatDrafts(alice.id);
    assert.deepEqual(drafts.map((d) => [d.draft_id, d.text]), [[7, ""], [7, "Thinking hard"]]);
    assert.deepEqual(drafts[1].entities, [{ offset: 0, length: 8, type: "bold" }]);
    // Group messages are the group's; the bot may answer there.
    await api(tg).sendMessage(group.id, "in group");
    assert.equal(tg.chatMessages(group.id).length, 1);
  });
});

Deno.test("sendRichMessage: Markdown becomes Telegram's blocks; limits and errors", async () => {
  await withFake(async (tg) => {
    const group = { id: -5002, type: "group" as const, title: "G" };
    const { message: question } = tg.sendText(alice, "hi");
    tg.sendText(alice, "hi all", group);
    const markdown = [
      "# Title",
      "Some **bold** and `code`, ==marked==, [a link](https://t.me/) and $x^2$.",
      "- one\n- [x] two",
      "| a | b |\n|:--|--:|\n| 1 | *2* |",
      "```py\nprint(1)\n```",
      "---",
      "> quoted",
      "$$E = mc^2$$",
    ].join("\n\n");
    const sent = await api(tg).sendRichMessage(alice.id, { markdown }, {
      reply_parameters: { message_id: question.message_id as number },
    });
    assert.equal(sent.chat.id, alice.id);
    assert.equal(sent.reply_to_message?.message_id, question.message_id);
    const blocks = sent.rich_message.blocks as unknown as Json[];
    assert.deepEqual(blocks.map((b) => b.type), [
      "heading",
      "paragraph",
      "list",
      "table",
      "pre",
      "divider",
      "blockquote",
      "mathematical_expression",
    ]);
    assert.deepEqual(blocks[0], { type: "heading", text: "Title", size: 1 });
    assert.deepEqual(blocks[1].text, [
      "Some ",
      { type: "bold", text: "bold" },
      " and ",
      { type: "code", text: "code" },
      ", ",
      { type: "marked", text: "marked" },
      ", ",
      { type: "url", text: "a link", url: "https://t.me/" },
      " and ",
      { type: "mathematical_expression", expression: "x^2" },
      ".",
    ]);
    const list = blocks[2].items as Json[];
    assert.deepEqual(list[1], {
      label: "•",
      blocks: [{ type: "paragraph", text: "two" }],
      has_checkbox: true,
      is_checked: true,
    });
    const cells = blocks[3].cells as Json[][];
    assert.deepEqual(cells[0][0], { text: "a", is_header: true, align: "left", valign: "top" });
    assert.deepEqual(cells[1][1], {
      text: { type: "italic", text: "2" },
      align: "right",
      valign: "top",
    });
    assert.deepEqual(blocks[4], { type: "pre", text: "print(1)", language: "py" });
    const stored = tg.chatMessages(alice.id).at(-1)!;
    assert.equal(stored.text, undefined);
    assert.equal(stored.rich!.markdown, markdown);
    assert.match(stored.rich!.text, /^Title\n\nSome bold and code, marked, a link and x\^2\./);
    assert.match(stored.rich!.text, /a \| b\n1 \| 2/);
    // Rich messages go to groups too.
    const inGroup = await api(tg).sendRichMessage(group.id, { markdown: "Hi" });
    assert.deepEqual(inGroup.rich_message.blocks, [{ type: "paragraph", text: "Hi" }]);

    const rich = (rich_message?: Json): Json => ({ chat_id: alice.id, rich_message });
    const wide = Array.from({ length: 21 }, (_, i) => `c${i}`);
    await assertRefused(tg, "sendRichMessage", [
      [rich(), 'Bad Request: parameter "rich_message" is required'],
      [
        rich({ markdown: "a", html: "b" }),
        "Bad Request: exactly one of the fields html, markdown or blocks must be specified",
      ],
      [rich({ markdown: "  \n" }), "Bad Request: rich message is empty"],
      [rich({ markdown: "x".repeat(32769) }), "Bad Request: rich message text is too long"],
      [
        rich({ markdown: Array.from({ length: 501 }, (_, i) => `- ${i}`).join("\n") }),
        "Bad Request: rich message has too many blocks",
      ],
      [
        rich({ markdown: `| ${wide.join(" | ")} |\n|${wide.map(() => "---").join("|")}|` }),
        "Bad Request: table has too many columns",
      ],
      [
        rich({ markdown: "![](https://example.com/a.png)" }),
        "Bad Request: failed to get HTTP URL content",
      ],
      [
        rich({ html: "<b>x</b>" }),
        "Bad Request: FakeTelegram does not model rich messages by html",
      ],
    ]);
    // 32768 characters of text is allowed; markup does not count.
    await api(tg).sendRichMessage(alice.id, { markdown: `**${"y".repeat(32768)}**` });
  });
});

Deno.test("drafts: rich drafts, the stop button, shown until a message or the timeout", async () => {
  await withFake(async (tg) => {
    const group = { id: -5003, type: "group" as const, title: "G" };
    tg.sendText(alice, "hi");
    tg.sendText(alice, "hi all", group);
    assert.equal(
      await api(tg).sendMessageDraft(alice.id, 5, "", { can_stop: true, keep_on_stop: true }),
      true,
    );
    assert.equal(tg.shownDraft(alice.id)?.text, "");
    assert.equal(
      await api(tg).sendRichMessageDraft(alice.id, 5, { markdown: "**Half** an" }, {
        can_stop: true,
      }),
      true,
    );
    const draft = { chat_id: alice.id, draft_id: 5, rich_message: { markdown: "x" } };
    await assertRefused(tg, "sendRichMessageDraft", [
      [{ ...draft, chat_id: group.id }, "Bad Request: TEXTDRAFT_PEER_INVALID"],
      [{ ...draft, draft_id: 0 }, "Bad Request: draft_id must be non-zero"],
      [
        { ...draft, rich_message: { markdown: "x".repeat(32769) } },
        "Bad Request: rich message text is too long",
      ],
    ]);
    const drafts = tg.chatDrafts(alice.id);
    assert.deepEqual(
      drafts.map((d) => [d.method, d.text, d.can_stop, d.keep_on_stop]),
      [["sendMessageDraft", "", true, true], ["sendRichMessageDraft", "Half an", true, undefined]],
    );
    assert.deepEqual(drafts[1].rich!.blocks, [
      { type: "paragraph", text: [{ type: "bold", text: "Half" }, " an"] },
    ]);

    // The user presses stop: the update names the chat and the draft, the draft goes away.
    const updateId = tg.pressStop(alice.id);
    const updates = (await call(tg, "getUpdates")).body.result as Json[];
    const stop = updates.find((u) => u.update_id === updateId)!;
    assert.deepEqual(stop.stopped_message_generation, {
      chat: { id: alice.id, first_name: "Alice", type: "private" },
      draft_id: 5,
    });
    assert.equal(tg.shownDraft(alice.id), undefined);
    assert.throws(() => tg.pressStop(alice.id), /shows no draft/);

    // keep_on_stop keeps the draft, without its button; a message from the bot replaces it.
    await api(tg).sendMessageDraft(alice.id, 6, "kept", { can_stop: true, keep_on_stop: true });
    tg.pressStop(alice.id);
    assert.equal(tg.shownDraft(alice.id)?.text, "kept");
    assert.throws(() => tg.pressStop(alice.id), /no stop button/);
    await api(tg).sendMessage(alice.id, "final");
    assert.equal(tg.shownDraft(alice.id), undefined);

    // Without can_stop there is no button; a draft left alone expires.
    await api(tg).sendMessageDraft(alice.id, 7, "no button");
    assert.throws(() => tg.pressStop(alice.id), /no stop button/);
    await new Promise((resolve) => setTimeout(resolve, 120));
    assert.equal(tg.shownDraft(alice.id), undefined);
  }, { draftTtlMs: 100 });
});

Deno.test("waitForCall sees past and future calls and times out listing what it saw", async () => {
  await withFake(async (tg) => {
    tg.sendText(alice, "hi");
    await api(tg).sendChatAction(alice.id, "typing");
    const past = await tg.waitForCall("sendChatAction");
    assert.equal(past.params.action, "typing");
    const future = tg.waitForCall("sendMessage", (c) => c.params.text === "later");
    await api(tg).sendMessage(alice.id, "sooner");
    await api(tg).sendMessage(alice.id, "later");
    assert.equal((await future).ok, true);
    const since = tg.calls.length;
    await assert.rejects(
      tg.waitForCall("sendMessage", undefined, { since, timeoutMs: 100 }),
      /timed out after 100 ms; 0 matched; calls seen since #\d+: none/,
    );
    const two = await tg.waitForCalls("sendMessage", 2);
    assert.deepEqual(two.map((c) => c.params.text), ["sooner", "later"]);
  });
});

Deno.test("the HTML parser: UTF-16 offsets, byte offsets in errors", () => {
  const html = parseHtml("😀 <b>é</b>");
  assert.deepEqual(html.entities, [{ offset: 3, length: 1, type: "bold" }]);
  assert.throws(() => parseHtml("😀<x>"), /Unsupported start tag "x" at byte offset 4/);
});
