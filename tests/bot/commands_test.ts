import assert from "node:assert/strict";
import { formatExport, formatHistory } from "../../src/bot/commands.ts";
import { allTexts, langOf } from "../../src/bot/texts.ts";
import { visibleLength } from "../../src/bot/render.ts";

const messages = [
  { role: "user" as const, text: "What is <b>?", at: new Date("2026-11-24T10:00:00Z") },
  { role: "assistant" as const, text: "A tag & more", at: new Date("2026-11-24T10:00:05Z") },
];

Deno.test("history: who said what, escaped for Telegram HTML", () => {
  const html = formatHistory(messages, allTexts.en);
  assert.match(html, /👤 You:<\/b> What is &lt;b&gt;\?/);
  assert.match(html, /🤖 Assistant:<\/b> A tag &amp; more/);
  assert.ok(html.indexOf("What is") < html.indexOf("A tag"), "oldest first");
});

Deno.test("history: ten long messages still fit one Telegram message", () => {
  const long = Array.from({ length: 10 }, (_, i) => ({
    role: i % 2 ? "assistant" as const : "user" as const,
    text: `${i} ` + "x".repeat(2000),
  }));
  const html = formatHistory(long, allTexts.ru);
  assert.ok(visibleLength(html) <= 4096, String(visibleLength(html)));
  assert.match(html, /9 x/, "the newest message is kept");
});

Deno.test("export: txt and md documents named with the date", () => {
  const now = new Date("2026-11-24T12:00:00Z");
  const txt = formatExport(messages, allTexts.en, "txt", now);
  assert.equal(txt.name, "conversation-2026-11-24.txt");
  assert.match(txt.content, /^Conversation with the assistant, 2026-11-24/);
  assert.match(txt.content, /You \(2026-11-24 10:00 UTC\):\nWhat is <b>\?/);
  const md = formatExport(messages, allTexts.ru, "md", now);
  assert.equal(md.name, "conversation-2026-11-24.md");
  assert.match(md.content, /^# Разговор с ассистентом, 2026-11-24/);
  assert.match(md.content, /## Ассистент \(2026-11-24 10:00 UTC\)\n\nA tag & more/);
});

Deno.test("texts: language follows the Telegram language code", () => {
  assert.equal(langOf("ru"), "ru");
  assert.equal(langOf("uk"), "ru");
  assert.equal(langOf("en-US"), "en");
  assert.equal(langOf("de"), "en");
  assert.equal(langOf(undefined), "en");
  assert.deepEqual(Object.keys(allTexts.en).sort(), Object.keys(allTexts.ru).sort());
  assert.deepEqual(
    allTexts.en.commands.map((c) => c.command),
    allTexts.ru.commands.map((c) => c.command),
  );
});
