/**
 * End-to-end: the three `OPENAI_API` backends as a subscriber lives with them for
 * months: compaction keeps a Conversation inside a small context window; `responses`
 * and `chat` keep a bounded history in the bot's store (KV and Redis) across restarts;
 * /history, /export and /reset work the same everywhere; reasoning never shows; and the
 * bot refuses to start against a server that lacks the configured API.
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { type Stack, startExpectingExit, withStack } from "../helpers/stack.ts";
import { markdownOf, modelRequests, saysTo, sentTo } from "../helpers/predicates.ts";
import { KvStore } from "../../src/store/kv.ts";
import { RedisStore } from "../../src/store/redis.ts";
import type { Store } from "../../src/store/store.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** The bot's store, opened beside it (Deno KV allows several processes on one file). */
async function openBotStore(stack: Stack): Promise<Store> {
  return stack.redis
    ? new RedisStore({ url: stack.redis.url })
    : await KvStore.open(`${ROOT}${stack.env.KV_PATH}`);
}

Deno.test(
  "conversations: many long turns stay inside a small context window by compaction",
  () =>
    withStack({
      openai: { contextWindow: 1000 },
      env: { CONTEXT_COMPACT_TOKENS: "600" },
    }, async (stack) => {
      const { telegram, openai } = stack;
      // 100 tokens a question, 200 an answer: without compaction the 5th turn fails.
      openai.reply = (input) => `${input.slice(0, 3)}: ${"lorem ipsum ".repeat(66)}`;
      const user = stack.subscriber();
      const turns = Array.from({ length: 12 }, (_, i) => `q${String(i).padStart(2, "0")}`);
      for (const q of turns) telegram.sendText(user, `${q} ${"dolor sit ".repeat(40)}`);
      for (const q of turns) {
        await telegram.waitForCall("sendRichMessage", saysTo(user.id, new RegExp(`^${q}: lorem`)));
      }
      const calls = modelRequests(stack.openai, "/v1/responses");
      assert.equal(calls.length, 12);
      const body = calls[0].body as Record<string, unknown>;
      assert.deepEqual(body.context_management, [{ type: "compaction", compact_threshold: 600 }]);
      assert.match(String(body.safety_identifier), /^[0-9a-f]{64}$/);
      assert.ok(!JSON.stringify(body).includes(String(user.id)), "never the raw user id");
      const items = openai.conversationItems(String(body.conversation)) as { type: string }[];
      assert.ok(items.filter((i) => i.type === "compaction").length >= 3, "compacted repeatedly");
      // No error text was ever sent.
      assert.equal(telegram.callsTo("sendMessage").filter(sentTo(user.id)).length, 0);

      telegram.sendText(user, "/history");
      const history = await telegram.waitForCall("sendMessage", saysTo(user.id, /Last messages/));
      assert.match(String(history.params.text), /q11: lorem/);
    }),
);

Deno.test(
  "conversations: past the context window the user is told to /reset, and /reset helps",
  () =>
    withStack({
      openai: { contextWindow: 1000 },
      env: { CONTEXT_COMPACT_TOKENS: "0" },
    }, async (stack) => {
      const { telegram, openai } = stack;
      openai.reply = (input) => `${input.slice(0, 3)}: ${"lorem ipsum ".repeat(66)}`;
      const user = stack.subscriber(undefined, "ru");
      for (let i = 0; i < 5; i++) telegram.sendText(user, `q0${i} ${"dolor sit ".repeat(40)}`);
      const full = await telegram.waitForCall("sendMessage", saysTo(user.id, /\/reset/));
      assert.match(String(full.params.text), /слишком длинным/);
      const last = modelRequests(stack.openai, "/v1/responses").at(-1)!;
      assert.equal((last.body as Record<string, unknown>).context_management, undefined);
      await stack.bot.waitForOutput(/contextFull.*CONTEXT_COMPACT_TOKENS/);
      telegram.sendText(user, "/reset");
      await telegram.waitForCall("sendMessage", saysTo(user.id, /новый разговор/));
      telegram.sendText(user, "q05 fresh start");
      await telegram.waitForCall("sendRichMessage", saysTo(user.id, /^q05: lorem/));
    }),
);

Deno.test("conversations: MAX_OUTPUT_TOKENS cuts an answer, marked as cut", () =>
  withStack({ env: { MAX_OUTPUT_TOKENS: "16" } }, async (stack) => {
    const { telegram, openai } = stack;
    openai.reply = () => "word ".repeat(100);
    const user = stack.subscriber();
    telegram.sendText(user, "talk a lot");
    const cut = await telegram.waitForCall("sendRichMessage", saysTo(user.id, /cut short/));
    assert.match(markdownOf(cut), /^(word ){12}word\n\n\(the answer was cut short\)$/);
    assert.equal(
      (modelRequests(stack.openai, "/v1/responses")[0].body as Record<string, unknown>)
        .max_output_tokens,
      16,
    );
  }));

for (const api of ["responses", "chat"] as const) {
  for (const redis of [false, true]) {
    const path = api === "responses" ? "/v1/responses" : "/v1/chat/completions";
    Deno.test(
      `${api} (${redis ? "Redis" : "KV"}): the history in the store carries the conversation ` +
        "across turns and a restart; /history, /export, /reset; no reasoning shown",
      () =>
        withStack({
          redis,
          openai: { reasoning: "think", lacks: ["conversations"] },
          env: { OPENAI_API: api },
        }, async (stack) => {
          const { telegram } = stack;
          const user = stack.subscriber();
          telegram.sendText(user, "my name is Ann");
          const first = await telegram.waitForCall(
            "sendRichMessage",
            saysTo(user.id, /Echo: my name is Ann/),
          );
          assert.equal(markdownOf(first), "Echo: my name is Ann", "no <think> block");
          telegram.sendText(user, "what is my name?");
          await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: what is my name/));
          await stack.restartBot();
          telegram.sendText(user, "still there?");
          await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: still there/));

          const calls = modelRequests(stack.openai, path);
          assert.equal(calls.length, 3);
          const sent = JSON.stringify(calls[2].body);
          for (
            const t of [
              "my name is Ann",
              "Echo: my name is Ann",
              "what is my name?",
              "still there?",
            ]
          ) {
            assert.ok(sent.includes(t), `the third request carries "${t}"`);
          }
          assert.ok(!sent.includes("think"), "reasoning is never sent back");
          assert.ok(!sent.includes("conversation"));

          telegram.sendText(user, "/history");
          const history = await telegram.waitForCall(
            "sendMessage",
            saysTo(user.id, /Last messages/),
          );
          assert.match(String(history.params.text), /You:<\/b> my name is Ann/);
          assert.match(String(history.params.text), /Assistant:<\/b> Echo: still there\?/);

          telegram.sendText(user, "/export");
          await telegram.waitForCall("sendDocument", sentTo(user.id));
          const doc = telegram.chatMessages(user.id).find((m) => m.document)!.document!;
          const content = new TextDecoder().decode(doc.content);
          assert.match(content, /You \(\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC\):\nmy name is Ann/);
          assert.match(content, /Assistant.*:\nEcho: what is my name\?/);

          const store = await openBotStore(stack);
          try {
            assert.ok(await store.get(`history:${user.id}`), "the history is in the bot's store");
            telegram.sendText(user, "/reset");
            await telegram.waitForCall("sendMessage", saysTo(user.id, /new conversation/));
            assert.equal(await store.get(`history:${user.id}`), null, "deleted at once");
          } finally {
            await store.close();
          }
          telegram.sendText(user, "/history");
          await telegram.waitForCall("sendMessage", saysTo(user.id, /No messages yet/));
          telegram.sendText(user, "hello again");
          await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: hello again/));
          const after = JSON.stringify(modelRequests(stack.openai, path).at(-1)!.body);
          assert.ok(!after.includes("Ann"), "nothing from before /reset is sent");
        }),
    );
  }
}

Deno.test("chat: the history is trimmed to HISTORY_MAX_TOKENS, oldest turns first", () =>
  withStack({ env: { OPENAI_API: "chat", HISTORY_MAX_TOKENS: "60" } }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    // Each turn: 10 tokens of question, 12 of answer; 60 keeps the last two turns.
    for (const w of ["alpha", "bravo", "charlie", "delta"]) {
      telegram.sendText(user, w.padEnd(40, "."));
    }
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: delta/));
    telegram.sendText(user, "/history");
    const history = String(
      (await telegram.waitForCall("sendMessage", saysTo(user.id, /Last messages/))).params.text,
    );
    assert.doesNotMatch(history, /alpha|bravo/);
    assert.match(history, /charlie[\s\S]*delta/);
    const last = JSON.stringify(modelRequests(stack.openai, "/v1/chat/completions").at(-1)!.body);
    assert.doesNotMatch(last, /alpha/, "the oldest turn was no longer sent");
    assert.match(last, /bravo[\s\S]*charlie[\s\S]*delta/);
  }));

Deno.test("start-up: conversations against a server without them fails fast, in one line", async () => {
  const { code, output } = await startExpectingExit({ openai: { lacks: ["conversations"] } });
  assert.equal(code, 1);
  const lines = output.split("\n").filter((l) => /does not serve/.test(l));
  assert.equal(lines.length, 1);
  assert.match(lines[0], /\[FTL\].*OPENAI_API=conversations: .* set OPENAI_API=responses or chat/);
  assert.doesNotMatch(output, /Polling as/);
});

Deno.test("start-up: responses against a chat-only server says to use chat", async () => {
  const { code, output } = await startExpectingExit({
    env: { OPENAI_API: "responses" },
    openai: { lacks: ["conversations", "responses"] },
  });
  assert.equal(code, 1);
  assert.match(
    output,
    /OPENAI_API=responses: .*\(POST \/responses answered 404\): set OPENAI_API=chat/,
  );
});

Deno.test("start-up: an unknown OPENAI_API is refused with one line", async () => {
  const { code, output } = await startExpectingExit({ env: { OPENAI_API: "completions" } });
  assert.equal(code, 1);
  assert.match(
    output,
    /Configuration error: OPENAI_API: must be conversations \(default\), responses or chat, got "completions"/,
  );
});
