/**
 * End-to-end, webhook mode: the real bot serves HTTP on a loopback port; the fake
 * Telegram registers it through setWebhook and POSTs updates to it with the secret
 * header. Requests that are not Telegram's are sent directly with fetch.
 */
import assert from "node:assert/strict";
import { freePort, messageUpdate, withStack } from "../helpers/stack.ts";
import { answers, requestsTo, waitForAnswer } from "../helpers/predicates.ts";
import { MAX_BODY_BYTES, MAX_CONNECTIONS } from "../../src/transport/webhook.ts";
import { ALLOWED_UPDATES } from "../../src/bot/bot.ts";

const SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token";

Deno.test("webhook: registered with the secret; updates are answered; health and ready", () =>
  withStack({ webhook: true }, async (stack) => {
    const { telegram, openai, webhook } = stack;
    const [set] = telegram.callsTo("setWebhook");
    assert.equal(set.ok, true);
    assert.equal(set.params.url, webhook!.url);
    assert.equal(set.params.secret_token, webhook!.secret);
    assert.deepEqual(set.params.allowed_updates, [...ALLOWED_UPDATES]);
    assert.equal(set.params.max_connections, MAX_CONNECTIONS);
    assert.equal(telegram.callsTo("getUpdates").length, 0, "no polling in webhook mode");

    const user = stack.subscriber();
    telegram.sendText(user, "hello over webhook");
    await waitForAnswer(telegram, /Echo: hello over webhook/);
    assert.equal(requestsTo(openai, "/v1/responses").length, 1);

    const origin = new URL(webhook!.url).origin;
    const health = await fetch(`${origin}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const ready = await fetch(`${origin}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), "ready");
    const metrics = await fetch(`${origin}/metrics`);
    assert.equal(metrics.status, 404, "no METRICS_TOKEN: /metrics is not on the public port");
    await metrics.body?.cancel();
  }));

Deno.test("webhook: wrong or missing secret and garbage bodies are refused; nothing reaches the bot", () =>
  withStack({ webhook: true }, async (stack) => {
    const { telegram, openai, webhook } = stack;
    const user = stack.subscriber();
    const forged = messageUpdate(user, "forged message", 900_001);
    const send = async (body: BodyInit, headers: Record<string, string> = {}) => {
      const res = await fetch(webhook!.url, { method: "POST", body, headers });
      await res.body?.cancel();
      return res.status;
    };
    const json = { "content-type": "application/json" };
    assert.equal(await send(JSON.stringify(forged), json), 401, "no secret");
    assert.equal(
      await send(JSON.stringify(forged), { ...json, [SECRET_HEADER]: "not-the-secret" }),
      401,
      "wrong secret",
    );
    assert.equal(
      await send(JSON.stringify(forged), { ...json, [SECRET_HEADER]: webhook!.secret + "x" }),
      401,
      "the secret plus a character",
    );
    const withSecret = { ...json, [SECRET_HEADER]: webhook!.secret };
    assert.equal(await send("{not json", withSecret), 400);
    assert.equal(await send("[1,2,3]", withSecret), 400);
    assert.equal(await send('{"message":{"text":"no id"}}', withSecret), 400);
    assert.equal(await send("x".repeat(MAX_BODY_BYTES + 1), withSecret), 413);
    // The same without Content-Length: a stream the server cuts off.
    const chunk = new Uint8Array(64 * 1024).fill(0x20);
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent > 4 * MAX_BODY_BYTES) return controller.close();
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    assert.equal(await send(stream, withSecret), 413);
    const get = await fetch(webhook!.url);
    await get.body?.cancel();
    assert.equal(get.status, 405);
    const elsewhere = await fetch(new URL("/somewhere-else", webhook!.url), { method: "POST" });
    await elsewhere.body?.cancel();
    assert.equal(elsewhere.status, 404);

    // The bot is fine and never saw the forged message.
    telegram.sendText(user, "a real one");
    await waitForAnswer(telegram, /Echo: a real one/);
    assert.equal(answers(telegram, /forged/).length, 0);
    const inputs = JSON.stringify(openai.requests.map((r) => r.body));
    assert.ok(!inputs.includes("forged"), "the forged text reached OpenAI");
    await stack.bot.waitForOutput(/refused a request \(401, wrong or missing secret token\)/);
    await stack.bot.waitForOutput(/refused a request \(413/);
  }));

Deno.test("webhook: the bot survives a restart and takes updates again on the same URL", () =>
  withStack({ webhook: true }, async (stack) => {
    const { telegram } = stack;
    const user = stack.subscriber();
    await stack.restartBot();
    telegram.sendText(user, "after restart");
    await waitForAnswer(telegram, /Echo: after restart/);
    const sets = telegram.callsTo("setWebhook");
    // Telegram allows one setWebhook a second: the second start's 429 was waited out.
    assert.equal(sets.filter((c) => c.ok).length, 2, "setWebhook on every start");
  }));

Deno.test("webhook: /metrics on METRICS_PORT, and on the webhook port only with METRICS_TOKEN", () => {
  const metricsPort = freePort();
  const token = crypto.randomUUID().replaceAll("-", "");
  const env = { METRICS_PORT: String(metricsPort), METRICS_TOKEN: token };
  return withStack({ webhook: true, env }, async (stack) => {
    const scrape = async (url: string, authorization?: string) => {
      const res = await fetch(url, { headers: authorization ? { authorization } : {} });
      return { status: res.status, body: await res.text() };
    };
    const own = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(own.status, 200);
    assert.match(own.body, /^# HELP bot_answers_total/m);

    const publicUrl = new URL("/metrics", stack.webhook!.url).href;
    assert.equal((await scrape(publicUrl)).status, 401, "no token");
    assert.equal((await scrape(publicUrl, "Bearer wrong-token-0123456789")).status, 401);
    const authorised = await scrape(publicUrl, `Bearer ${token}`);
    assert.equal(authorised.status, 200);
    assert.match(authorised.body, /^# HELP bot_answers_total/m);
    await stack.bot.waitForOutput(/refused \/metrics \(401/);
    assert.ok(!stack.bot.output().includes(token), "the metrics token was printed");
  });
});
