/**
 * Reply delivery against the fake Bot API, through grammY's own client: the final
 * message's fallback chain (`deliver.ts`) and the streamed previews (`preview.ts`),
 * the preview handing over to the delivery step as the chat handler does.
 */
import assert from "node:assert/strict";
import { Api } from "grammy";
import { FakeTelegram, type FakeUser } from "../fakes/telegram.ts";
import { ApiSupport, deliverAnswer } from "../../src/bot/deliver.ts";
import { draftIdFor, Preview, type PreviewOptions } from "../../src/bot/preview.ts";
import { finalText } from "../../src/bot/chat.ts";
import { allTexts } from "../../src/bot/texts.ts";
import { RICH_TEXT_LIMIT, splitForTelegram } from "../../src/bot/split.ts";
import { ConfigError, parseConfig } from "../../src/config.ts";
import { ManualClock, settle } from "../helpers/clock.ts";
import { markdownOf } from "../helpers/predicates.ts";

const user: FakeUser = { id: 4001, first_name: "Ann", language_code: "en" };

async function withFake(
  fn: (tg: FakeTelegram, api: Api) => Promise<void>,
  opts?: Parameters<typeof FakeTelegram.start>[0],
): Promise<void> {
  const tg = await FakeTelegram.start(opts);
  try {
    tg.sendText(user, "question");
    await fn(tg, new Api(tg.token, { apiRoot: tg.apiRoot }));
  } finally {
    await tg.close();
  }
}

/** The calls that reached the chat, as "method" or "method!" when refused. */
const trail = (tg: FakeTelegram) =>
  tg.calls.filter((c) => c.params.chat_id === user.id).map((c) => c.method + (c.ok ? "" : "!"));

/** A preview, plus `finish`: stop it and deliver the final answer, as the chat handler does. */
function stream(api: Api, extra: Partial<PreviewOptions> = {}) {
  const options: PreviewOptions = {
    api,
    chatId: user.id,
    draftId: draftIdFor(1),
    replyTo: 1,
    format: "rich",
    support: new ApiSupport(),
    ...extra,
  };
  const preview = new Preview(options);
  const finish = async (markdown: string) => {
    const shown = await preview.stop();
    const sent = await deliverAnswer(api, user.id, markdown, {
      replyTo: options.replyTo,
      format: options.format,
      support: options.support,
      edited: shown.edited,
    });
    preview.delivered();
    return sent;
  };
  return Object.assign(preview, { finish });
}

Deno.test("rich: the Markdown goes out as one sendRichMessage replying to the question", async () => {
  await withFake(async (tg, api) => {
    const markdown = "## Plan\n\n| a | b |\n|---|---|\n| 1 | **2** |\n\n```ts\nlet x = 1;\n```";
    const sent = await deliverAnswer(api, user.id, markdown, { replyTo: 1 });
    assert.equal(sent.format, "rich");
    assert.deepEqual(trail(tg), ["sendRichMessage"]);
    const call = tg.callsTo("sendRichMessage")[0];
    assert.deepEqual(call.params.rich_message, { markdown });
    assert.equal((call.params.reply_parameters as { message_id: number }).message_id, 1);
    const [message] = tg.chatMessages(user.id);
    assert.deepEqual(
      message.rich!.blocks.map((b) => b.type),
      ["heading", "table", "pre"],
    );
    assert.equal(message.reply_to_message_id, 1);
  });
});

Deno.test("rich 404 falls back to HTML and is remembered; HTML refused falls back to plain", async () => {
  await withFake(async (tg, api) => {
    const support = new ApiSupport();
    const first = await deliverAnswer(api, user.id, "Some **bold** text", { support });
    assert.equal(first.format, "html");
    assert.deepEqual(trail(tg), ["sendRichMessage!", "sendMessage"]);
    assert.equal(tg.callsTo("sendMessage")[0].params.text, "Some <b>bold</b> text");

    // Remembered: the next answer goes straight to HTML; Telegram refusing it gives plain.
    tg.failNext("sendMessage", {
      error_code: 400,
      description: 'Bad Request: can\'t parse entities: Unsupported start tag "b" at byte offset 5',
    });
    const second = await deliverAnswer(api, user.id, "More **bold** text", { support });
    assert.deepEqual(trail(tg).slice(2), ["sendMessage!", "sendMessage"]);
    assert.equal(tg.callsTo("sendMessage")[2].params.parse_mode, undefined);
    assert.equal(tg.chatMessages(user.id).at(-1)!.text, "More **bold** text");
    assert.equal(second.messages.length, 1);
  }, { missingMethods: ["sendRichMessage"] });
});

Deno.test("a rich message Telegram refuses (400) sends that answer as HTML; the next tries rich again", async () => {
  await withFake(async (tg, api) => {
    const support = new ApiSupport();
    // A media block the server cannot fetch: a 400 for the rich message.
    const answer = "Look:\n\n![diagram](https://example.com/d.png)\n\nDone.";
    const first = await deliverAnswer(api, user.id, answer, { support });
    assert.equal(first.format, "html");
    assert.deepEqual(trail(tg), ["sendRichMessage!", "sendMessage"]);
    assert.match(tg.chatMessages(user.id)[0].text!, /Look:\n\ndiagram\n\nDone\./);
    const next = await deliverAnswer(api, user.id, "Plain words", { support });
    assert.equal(next.format, "rich");
  });
});

Deno.test("REPLY_FORMAT html and plain start the chain lower", async () => {
  await withFake(async (tg, api) => {
    await deliverAnswer(api, user.id, "*one*", { format: "html" });
    await deliverAnswer(api, user.id, "*two*", { format: "plain" });
    assert.deepEqual(trail(tg), ["sendMessage", "sendMessage"]);
    assert.deepEqual(tg.chatMessages(user.id).map((m) => m.text), ["one", "*two*"]);
    assert.equal(tg.callsTo("sendMessage")[1].params.parse_mode, undefined);
  });
});

Deno.test("a 70,000-character answer: rich messages split at block boundaries, nothing lost", async () => {
  await withFake(async (tg, api) => {
    // 130 paragraphs, a code block of 900 lines, a table of 300 rows, a list of 400 items.
    const code = Array.from({ length: 900 }, (_, i) => `const v${i} = ${i}; // value ${i}`);
    const table = "| n | square |\n|---|---|\n" +
      Array.from({ length: 300 }, (_, i) => `| ${i} | ${i * i} |`).join("\n");
    const prose = Array.from({ length: 130 }, (_, i) => `Paragraph ${i}. ` + "word ".repeat(60));
    const list = Array.from({ length: 400 }, (_, i) => `- item ${i}`).join("\n");
    const answer = `# Report\n\n${prose.join("\n\n")}\n\n\`\`\`js\n${
      code.join("\n")
    }\n\`\`\`\n\n${table}\n\n${list}\n\nThe end.`;
    assert.ok(answer.length > 2 * RICH_TEXT_LIMIT);
    const sent = await deliverAnswer(api, user.id, answer);
    assert.equal(sent.format, "rich");
    const calls = tg.callsTo("sendRichMessage");
    assert.ok(calls.length >= 3 && calls.every((c) => c.ok));
    const parts = calls.map((c) => (c.params.rich_message as { markdown: string }).markdown);
    for (const part of parts) {
      assert.ok(part.length <= RICH_TEXT_LIMIT);
      // Every part is complete Markdown: its code fences balance.
      assert.equal((part.match(/^```/gm) ?? []).length % 2, 0, part.slice(0, 80));
    }
    const seen = tg.chatMessages(user.id).map((m) => m.rich!.text).join("\n");
    let at = -1;
    const markers = [
      "Paragraph 0.",
      "Paragraph 129.",
      "const v0 =",
      "const v899 =",
      "299 | 89401",
      "• item 0",
      "• item 399",
    ];
    for (const marker of markers) {
      const i = seen.indexOf(marker);
      assert.ok(i > at, `${marker} missing or out of order`);
      at = i;
    }
    assert.ok(seen.endsWith("The end."));
  });
});

Deno.test("streaming: placeholder, first text at once, throttled drafts with a stop button, one final message", async () => {
  await withFake(async (tg, api) => {
    const clock = new ManualClock();
    const ids: number[] = [];
    let firstText = 0;
    const s = stream(api, {
      clock,
      onDraftId: (id) => ids.push(id),
      onFirstText: () => firstText++,
    });
    s.start();
    await tg.waitForCall("sendMessageDraft");
    s.push("Hello");
    // The first text is not held back by the throttle: it shows at once.
    await tg.waitForCall("sendRichMessageDraft");
    const words = " there, this answer arrives word by word and the drafts follow it.";
    for (const word of words.match(/\s*\S+/g)!) s.push(word);
    await clock.advance(299);
    assert.equal(tg.callsTo("sendRichMessageDraft").length, 1, "nothing before the interval");
    await clock.advance(1);
    // One draft per interval, with everything that arrived meanwhile.
    const [, second] = await tg.waitForCalls("sendRichMessageDraft", 2);
    const final = "Hello there, this answer arrives word by word and the drafts follow it.";
    assert.equal(markdownOf(second), final);
    await clock.advance(10_000);
    assert.equal(tg.callsTo("sendRichMessageDraft").length, 2, "nothing new: no draft");
    const sent = await s.finish(final);
    assert.equal(sent.messages.length, 1);
    assert.equal(firstText, 1);
    assert.equal(s.mode, "draft");
    assert.ok(s.firstTextMs !== undefined);

    assert.deepEqual(trail(tg), [
      "sendMessageDraft",
      "sendRichMessageDraft",
      "sendRichMessageDraft",
      "sendRichMessage",
    ]);
    const drafts = tg.callsTo("sendRichMessageDraft");
    assert.equal(markdownOf(drafts[0]), "Hello");
    const placeholder = tg.callsTo("sendMessageDraft")[0].params;
    assert.equal(placeholder.text, "");
    for (const c of [...tg.callsTo("sendMessageDraft"), ...drafts]) {
      assert.equal(c.params.can_stop, true);
      assert.equal(c.params.draft_id, draftIdFor(1));
    }
    assert.deepEqual(ids, [draftIdFor(1)]);
    assert.deepEqual(tg.callsTo("sendRichMessage")[0].params.rich_message, { markdown: final });
    // The final message replaced the draft.
    assert.equal(tg.shownDraft(user.id), undefined);
  });
});

Deno.test("past 500 characters drafts go out less often, in proportion to the text", async () => {
  await withFake(async (tg, api) => {
    const clock = new ManualClock();
    const s = stream(api, { clock });
    s.start();
    s.push("x".repeat(2995));
    await tg.waitForCall("sendRichMessageDraft");
    s.push(" more"); // 3,000 characters now
    await clock.advance(1799);
    assert.equal(tg.callsTo("sendRichMessageDraft").length, 1, "3,000 characters: 1.8 s apart");
    await clock.advance(1);
    await tg.waitForCalls("sendRichMessageDraft", 2);
    await s.finish("x".repeat(2995) + " more");
  });
});

Deno.test("a long pause: the draft is sent again before it expires", async () => {
  await withFake(async (tg, api) => {
    const clock = new ManualClock();
    const s = stream(api, { clock });
    s.start();
    s.push("Thinking about it");
    await tg.waitForCall("sendRichMessageDraft");
    // A pause of several draft lifetimes (a tool call, a slow model): a refresh every 20 s,
    // well within Telegram's ~30 s.
    for (let refresh = 2; refresh <= 4; refresh++) {
      await clock.advance(19_999);
      assert.equal(tg.callsTo("sendRichMessageDraft").length, refresh - 1);
      await clock.advance(1);
      const drafts = await tg.waitForCalls("sendRichMessageDraft", refresh);
      assert.equal(markdownOf(drafts.at(-1)!), "Thinking about it");
    }
    s.push(", done.");
    await s.finish("Thinking about it, done.");
    assert.equal(tg.chatMessages(user.id)[0].rich!.text, "Thinking about it, done.");
  });
});

Deno.test("rich drafts missing: HTML drafts, then the final through the chain", async () => {
  await withFake(async (tg, api) => {
    const support = new ApiSupport();
    const s = stream(api, { support });
    s.start();
    s.push("**Bold** start");
    await tg.waitForCall("sendMessageDraft", (c) => c.params.parse_mode === "HTML");
    await s.finish("**Bold** start");
    assert.ok(support.isMissing("sendRichMessageDraft"));
    assert.deepEqual(trail(tg), [
      "sendMessageDraft",
      "sendRichMessageDraft!",
      "sendMessageDraft",
      "sendRichMessage",
    ]);
    assert.equal(tg.chatDrafts(user.id).at(-1)!.text, "Bold start");
    // The next answer does not ask for rich drafts again.
    const next = stream(api, { support, draftId: draftIdFor(2) });
    next.start();
    next.push("Again");
    await next.finish("Again");
    assert.equal(tg.callsTo("sendRichMessageDraft").length, 1);
  }, { missingMethods: ["sendRichMessageDraft"] });
});

Deno.test("drafts missing: one message edited in place, at most one call per interval, rolling over at 4096", async () => {
  await withFake(async (tg, api) => {
    const clock = new ManualClock();
    const support = new ApiSupport();
    const s = stream(api, { support, format: "html", clock });
    const edits = () =>
      tg.calls.filter((c) =>
        c.params.chat_id === user.id && /^(sendMessage|editMessageText)$/.test(c.method)
      ).length;
    s.start();
    const paragraphs = Array.from(
      { length: 14 },
      (_, i) => `**Part ${i}.** ` + "lorem ipsum dolor sit amet ".repeat(18) + "\n\n",
    );
    const answer = paragraphs.join("").trimEnd();
    assert.ok(answer.length > 6000);
    s.push(paragraphs[0]);
    await tg.waitForCall("sendMessage");
    // Every further call waits for the clock: at most one per second.
    for (const p of paragraphs.slice(1)) {
      s.push(p);
      const before = edits();
      await clock.advance(999);
      assert.equal(edits(), before, "no call within the interval");
      await clock.advance(1);
      // The preview sleeps again once its call is done.
      while (clock.sleeping === 0) await settle();
      assert.ok(edits() - before <= 1, "at most one call per interval");
    }
    let finished = false;
    const delivered = s.finish(answer).finally(() => finished = true);
    for (let i = 0; i < 60 && !finished; i++) {
      const before = edits();
      await clock.advance(1000);
      assert.ok(edits() - before <= 1, "the final state is paced too");
    }
    const sent = await delivered;
    assert.equal(s.mode, "edit");
    assert.ok(support.isMissing("sendMessageDraft"));
    assert.deepEqual(trail(tg)[0], "sendMessageDraft!");
    const calls = tg.calls.filter((c) =>
      c.params.chat_id === user.id && /^(sendMessage|editMessageText)$/.test(c.method)
    );
    assert.ok(calls.every((c) => c.ok), "no call Telegram refused (not even 'not modified')");
    assert.equal(calls[0].method, "sendMessage");
    assert.equal((calls[0].params.reply_parameters as { message_id: number }).message_id, 1);
    assert.ok(calls.filter((c) => c.method === "editMessageText").length >= 2);
    // The final state is the whole answer, split exactly as the final delivery splits it.
    const chunks = splitForTelegram(answer);
    assert.ok(chunks.length >= 2);
    const messages = tg.chatMessages(user.id);
    assert.equal(messages.length, chunks.length);
    assert.deepEqual(sent.messages.map((m) => m.message_id), messages.map((m) => m.message_id));
    const shown = messages.map((m) => m.text).join("\n\n");
    for (let i = 0; i < 14; i++) assert.ok(shown.includes(`Part ${i}.`), `Part ${i} missing`);
    assert.ok(messages.every((m) => m.entities?.some((e) => e.type === "bold")));
  }, { missingMethods: ["sendMessageDraft", "sendRichMessageDraft", "sendRichMessage"] });
});

Deno.test("drafts refused in a chat (400): edit mode for this answer only", async () => {
  await withFake(async (tg, api) => {
    const support = new ApiSupport();
    tg.failNext("sendMessageDraft", {
      error_code: 400,
      description: "Bad Request: TEXTDRAFT_PEER_INVALID",
    });
    const s = stream(api, { support, timing: { editIntervalMs: 100 } });
    s.start();
    await tg.waitForCall("sendMessageDraft");
    s.push("Edited ");
    await tg.waitForCall("sendMessage");
    s.push("answer");
    await s.finish("Edited answer");
    assert.equal(s.mode, "edit");
    assert.equal(support.isMissing("sendMessageDraft"), false);
    assert.deepEqual(trail(tg), ["sendMessageDraft!", "sendMessage", "editMessageText"]);
    assert.equal(tg.chatMessages(user.id)[0].text, "Edited answer");
  });
});

Deno.test("stop ends the previews without a message; the final text carries the notes", async () => {
  await withFake(async (tg, api) => {
    const s = stream(api);
    s.start();
    s.push("Half");
    await tg.waitForCall("sendRichMessageDraft");
    await s.stop();
    s.push(" more");
    assert.deepEqual(trail(tg), ["sendMessageDraft", "sendRichMessageDraft"]);
  });
  const en = allTexts.en;
  assert.equal(finalText({ text: "Partial", status: "aborted" }, en), `Partial\n\n${en.stopped}`);
  assert.equal(finalText({ text: "  ", status: "aborted" }, en), en.stopped);
  assert.equal(finalText({ text: "", status: "completed" }, en), en.emptyAnswer);
  assert.equal(finalText({ text: "Cut", status: "incomplete" }, en), `Cut\n\n${en.incomplete}`);
});

Deno.test("REPLY_FORMAT: rich by default, html or plain, anything else names the variable", () => {
  const base = {
    TELEGRAM_BOT_TOKEN: "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij",
    OPENAI_API_KEY: "sk-test",
    CHANNEL_ID: "@some_channel",
  };
  assert.equal(parseConfig(base).replyFormat, "rich");
  assert.equal(parseConfig({ ...base, REPLY_FORMAT: "HTML" }).replyFormat, "html");
  assert.equal(parseConfig({ ...base, REPLY_FORMAT: "plain" }).replyFormat, "plain");
  assert.throws(
    () => parseConfig({ ...base, REPLY_FORMAT: "markdown" }),
    (e) =>
      e instanceof ConfigError && e.variable === "REPLY_FORMAT" &&
      /rich, html or plain/.test(e.message),
  );
});
