/**
 * End-to-end: the operator's controls. Usage limits, admin commands, subscription
 * changes followed through chat_member updates, and Prometheus metrics.
 */
import assert from "node:assert/strict";
import type { FakeTelegram } from "../fakes/telegram.ts";
import { CHANNEL, freePort, postUpdate, startSecondInstance, withStack } from "../helpers/stack.ts";
import { requestsTo, saysTo, textOf } from "../helpers/predicates.ts";

const ADMIN = 9001;
/** Successful rich answers to this chat that match. */
const richAnswers = (telegram: FakeTelegram, chatId: number, re: RegExp) =>
  telegram.callsTo("sendRichMessage").filter(saysTo(chatId, re)).length;

Deno.test("limits: the over-limit message names the limit and the reset; no tokens are spent", () =>
  withStack({
    env: { LIMIT_ANSWERS_PER_DAY: "2", MAX_MESSAGE_CHARS: "40" },
  }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    for (const text of ["one", "two"]) {
      telegram.sendText(user, text);
      await telegram.waitForCall("sendRichMessage", saysTo(user.id, new RegExp(`Echo: ${text}`)));
    }
    telegram.sendText(user, "three");
    const refusal = await telegram.waitForCall(
      "sendMessage",
      saysTo(user.id, /today's 2 answers.*resets at \d{4}-\d\d-\d\d 00:00 UTC/),
    );
    assert.ok(refusal.params.reply_parameters, "the refusal answers the refused message");
    telegram.sendText(user, "x".repeat(41));
    await telegram.waitForCall("sendMessage", saysTo(user.id, /too long: at most 40 characters/));
    assert.equal(requestsTo(openai, "/v1/responses").length, 2);

    telegram.sendText(user, "/usage");
    await telegram.waitForCall("sendMessage", saysTo(user.id, /answers: 2 of 2/));
  }));

Deno.test("limits: exact under a burst from many users", () =>
  withStack({
    env: { LIMIT_ANSWERS_PER_DAY: "2" },
    openai: { tokensPerSecond: 500 },
  }, async (stack) => {
    const { telegram, openai } = stack;
    const users = Array.from({ length: 8 }, () => stack.subscriber());
    for (const user of users) {
      for (let i = 0; i < 4; i++) telegram.sendText(user, `m${i}`);
    }
    await telegram.waitForCalls(
      "sendMessage",
      16,
      (c) => c.ok && /today's 2 answers/.test(textOf(c)),
      {
        timeoutMs: 30_000,
      },
    );
    await telegram.waitForCalls("sendRichMessage", 16, (c) => c.ok && /Echo: m/.test(textOf(c)), {
      timeoutMs: 30_000,
    });
    for (const user of users) {
      assert.equal(richAnswers(telegram, user.id, /Echo: m/), 2);
    }
    assert.equal(requestsTo(openai, "/v1/responses").length, 16);
  }));

Deno.test("limits: exact for one user across two instances on one Redis", () =>
  withStack({ redis: true, webhook: true, env: { LIMIT_ANSWERS_PER_DAY: "3" } }, async (stack) => {
    const { url: url2 } = await startSecondInstance(stack);
    const { telegram, openai, webhook } = stack;
    const user = stack.subscriber();
    const updates = Array.from({ length: 8 }, (_, i) => telegram.sendText(user, `q${i}`));
    await Promise.all(
      updates.map(({ update_id, message }, i) =>
        postUpdate(stack, [webhook!.url, url2][i % 2], { update_id, message })
      ),
    );
    await telegram.waitForCalls("sendMessage", 5, saysTo(user.id, /today's 3 answers/), {
      timeoutMs: 30_000,
    });
    await telegram.waitForCalls("sendRichMessage", 3, saysTo(user.id, /Echo: q/), {
      timeoutMs: 30_000,
    });
    assert.equal(richAnswers(telegram, user.id, /Echo: q/), 3);
    assert.equal(requestsTo(openai, "/v1/responses").length, 3);
  }));

Deno.test("admin commands: invisible to others, working for admins", () =>
  withStack({ env: { ADMIN_USER_IDS: String(ADMIN) } }, async (stack) => {
    const { telegram, openai } = stack;
    const user = stack.subscriber();
    const admin = stack.subscriber(ADMIN);
    telegram.sendText(user, "hello");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: hello/));

    // To a non-admin the commands do not exist: the same answer as any unknown command.
    const unknown = telegram.sendText(user, "/nonsense").update_id;
    await telegram.waitForCall("sendMessage", saysTo(user.id, /What I can do/));
    for (
      const command of ["/stats", "/limits", `/reset_user ${user.id}`, `/drop_cache ${user.id}`]
    ) {
      telegram.sendText(user, command);
    }
    await telegram.waitForCalls("sendMessage", 5, saysTo(user.id, /What I can do/));
    assert.ok(unknown > 0);
    assert.ok(
      !telegram.calls.some(saysTo(user.id, /Today \(until|Limits in force|forgotten|dropped/)),
    );

    telegram.sendText(admin, "/stats");
    const stats = await telegram.waitForCall("sendMessage", saysTo(ADMIN, /Today \(until/));
    assert.match(textOf(stats), /users: \d+ today, \d+ in total/);
    assert.match(textOf(stats), /answers: 1\b/);
    assert.match(textOf(stats), /store: kv/);
    telegram.sendText(admin, "/limits");
    await telegram.waitForCall(
      "sendMessage",
      saysTo(ADMIN, /Limits in force:[\s\S]*longest message: 4,096/),
    );

    // /reset_user: the user's next message starts a new conversation.
    const before = requestsTo(openai, "/v1/conversations").length;
    telegram.sendText(admin, `/reset_user ${user.id}`);
    await telegram.waitForCall("sendMessage", saysTo(ADMIN, /conversation forgotten/));
    telegram.sendText(user, "again");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: again/));
    assert.equal(requestsTo(openai, "/v1/conversations").length, before + 1);

    // /drop_cache: the next message asks Telegram again.
    const checks = () =>
      telegram.callsTo("getChatMember").filter((c) => c.params.user_id === user.id).length;
    const checksBefore = checks();
    telegram.sendText(admin, `/drop_cache ${user.id}`);
    await telegram.waitForCall("sendMessage", saysTo(ADMIN, /subscription status dropped/));
    telegram.sendText(user, "and again");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: and again/));
    assert.equal(checks(), checksBefore + 1);

    telegram.sendText(admin, "/reset_user bob");
    await telegram.waitForCall("sendMessage", saysTo(ADMIN, /Usage: \/reset_user <user id>/));
  }));

Deno.test("chat_member updates flip access at once, without waiting for the cache TTL", () =>
  withStack({}, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    telegram.sendText(user, "in");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: in/));
    const chat = {
      id: CHANNEL.id,
      type: "channel",
      title: CHANNEL.title,
      username: CHANNEL.username,
    };
    const change = (from: string, to: string) => ({
      chat_member: {
        chat,
        from: { id: user.id, is_bot: false, first_name: "U" },
        date: Math.floor(Date.now() / 1000),
        old_chat_member: { status: from, user: { id: user.id, is_bot: false, first_name: "U" } },
        new_chat_member: { status: to, user: { id: user.id, is_bot: false, first_name: "U" } },
      },
    });
    telegram.setMember(`@${CHANNEL.username}`, user.id, "left");
    telegram.setMember(CHANNEL.id, user.id, "left");
    // The update is the user's, so it is handled before their next message (one turn at a time).
    telegram.pushUpdate(change("member", "left"));
    telegram.sendText(user, "still in?");
    await telegram.waitForCall("sendMessage", saysTo(user.id, /subscribers of Test Channel/));

    telegram.setMember(`@${CHANNEL.username}`, user.id, "member");
    telegram.setMember(CHANNEL.id, user.id, "member");
    telegram.pushUpdate(change("left", "member"));
    telegram.sendText(user, "back");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: back/));
    assert.equal(
      telegram.callsTo("getChatMember").filter((c) => c.params.user_id === user.id).length,
      1,
      "both changes came from the updates, not from new checks",
    );
    const [polled] = telegram.callsTo("getUpdates");
    assert.ok((polled.params.allowed_updates as string[]).includes("chat_member"));
  }));

/** Parses Prometheus text format strictly enough to catch a malformed exposition. */
function parsePrometheus(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = line.match(/^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/);
    if (meta) {
      if (meta[1] === "TYPE") {
        assert.match(meta[3], /^(counter|gauge|histogram|summary|untyped)$/, line);
        typed.add(meta[2]);
      }
      continue;
    }
    const sample = line.match(
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/,
    );
    assert.ok(sample, `not a Prometheus line: ${line}`);
    const base = sample[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(sample[1]) || typed.has(base), `sample before its TYPE: ${line}`);
    samples.set(sample[1] + (sample[2] ?? ""), Number(sample[3]));
  }
  return samples;
}

Deno.test("metrics: /metrics (METRICS_PORT in polling) parses as Prometheus text and moves", () => {
  const port = freePort();
  return withStack({ env: { METRICS_PORT: String(port) } }, async (stack) => {
    const { telegram } = stack;
    const scrape = async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await response.text());
    };
    const before = await scrape();
    const user = stack.subscriber();
    telegram.sendText(user, "count me");
    await telegram.waitForCall("sendRichMessage", saysTo(user.id, /Echo: count me/));
    // The counters are updated right after the final message is sent.
    let after = await scrape();
    const settled = (m: Map<string, number>) =>
      m.get('bot_answers_total{outcome="completed"}') === 1 && m.get("bot_turns_in_flight") === 0;
    for (let i = 0; i < 40 && !settled(after); i++) {
      await new Promise((r) => setTimeout(r, 25));
      after = await scrape();
    }
    assert.equal(before.get('bot_answers_total{outcome="completed"}') ?? 0, 0);
    assert.equal(after.get('bot_answers_total{outcome="completed"}'), 1);
    assert.ok((after.get('bot_telegram_calls_total{method="sendRichMessage"}') ?? 0) >= 1);
    assert.equal(after.get('bot_subscription_cache_total{result="miss"}'), 1);
    assert.equal(after.get("bot_openai_latency_seconds_count"), 1);
    assert.equal(after.get("bot_openai_time_to_first_token_seconds_count"), 1);
    assert.ok((after.get('bot_openai_tokens_total{direction="out"}') ?? 0) > 0);
    assert.equal(after.get("bot_turns_in_flight"), 0);
  });
});
