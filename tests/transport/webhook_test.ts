/**
 * The webhook request handler without a server: plain Requests in, Responses out,
 * with a recording `handleUpdate` standing in for the bot.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../helpers/clock.ts";
import { getLogger } from "@logtape/logtape";
import type { Update } from "grammy/types";
import { createWebhookHandler, type WebhookHandlerOptions } from "../../src/transport/webhook.ts";

const PATH = "/tg/hook";
const SECRET = "s3cret_TOKEN-value";
const BASE = "http://bot.test";

function setup(overrides: Partial<WebhookHandlerOptions> = {}) {
  const handled: Update[] = [];
  const handler = createWebhookHandler({
    path: PATH,
    secret: SECRET,
    handleUpdate: (update) => {
      handled.push(update);
      return Promise.resolve();
    },
    ping: () => Promise.resolve(),
    initialised: () => true,
    log: getLogger(["test", "webhook"]),
    ...overrides,
  });
  return { handler, handled };
}

function post(body: BodyInit | null, secret: string | null = SECRET, headers: HeadersInit = {}) {
  const h = new Headers(headers);
  if (secret !== null) h.set("X-Telegram-Bot-Api-Secret-Token", secret);
  return new Request(`${BASE}${PATH}`, { method: "POST", body, headers: h });
}

const update = (id: number) => JSON.stringify({ update_id: id, message: { text: "hi" } });

Deno.test("webhook handler: a valid update with the secret is handled and gets an empty 200", async () => {
  const { handler, handled } = setup();
  const res = await handler.handle(post(update(7)));
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "");
  assert.deepEqual(handled.map((u) => u.update_id), [7]);
});

Deno.test("webhook handler: a missing or wrong secret is 401 and reaches nothing", async () => {
  const { handler, handled } = setup();
  for (
    const secret of [null, "", "wrong", SECRET.slice(0, -1), `${SECRET}x`, SECRET.toLowerCase()]
  ) {
    const res = await handler.handle(post(update(1), secret));
    assert.equal(res.status, 401, `secret ${JSON.stringify(secret)}`);
    assert.ok(!(await res.text()).includes(SECRET));
  }
  // Two header values are joined with ", " by Headers: not the secret either.
  const doubled = new Headers([["x-telegram-bot-api-secret-token", SECRET], [
    "x-telegram-bot-api-secret-token",
    SECRET,
  ]]);
  assert.equal((await handler.handle(post(update(1), null, doubled))).status, 401);
  assert.equal(handled.length, 0);
});

Deno.test("webhook handler: bodies that are not an update are 400", async () => {
  const { handler, handled } = setup();
  const bodies: (BodyInit | null)[] = [
    null,
    "",
    "not json",
    "[]",
    "null",
    "42",
    '"update"',
    "{}",
    '{"update_id":"1"}',
    '{"update_id":1.5}',
    '{"update_id":-1}',
    '{"update_id":1e300}',
    new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), // not UTF-8
  ];
  for (const body of bodies) {
    const res = await handler.handle(post(body));
    assert.equal(res.status, 400, `body ${String(body)}`);
  }
  assert.equal(handled.length, 0);
});

Deno.test("webhook handler: a large body is 413, whether or not Content-Length says so", async () => {
  const { handler, handled } = setup({ maxBodyBytes: 1000 });
  const big = JSON.stringify({ update_id: 1, message: { text: "x".repeat(2000) } });
  assert.equal((await handler.handle(post(big))).status, 413);

  // Streamed without a length: the reader stops after the limit and cancels the rest.
  let pulled = 0;
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(400).fill(0x20));
    },
    cancel() {
      cancelled = true;
    },
  });
  assert.equal((await handler.handle(post(endless))).status, 413);
  assert.ok(cancelled, "the body stream was cancelled");
  assert.ok(pulled <= 4, `read ${pulled} chunks of 400 bytes for a 1000-byte limit`);

  // A Content-Length that lies low does not help either.
  const lying = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(big));
      controller.close();
    },
  });
  assert.equal((await handler.handle(post(lying, SECRET, { "content-length": "10" }))).status, 413);
  // Right at the limit is fine.
  const exact = JSON.stringify({ update_id: 2, pad: "" });
  const padded = exact.replace('""', `"${"y".repeat(1000 - exact.length)}"`);
  assert.equal(new TextEncoder().encode(padded).length, 1000);
  assert.equal((await handler.handle(post(padded))).status, 200);
  assert.deepEqual(handled.map((u) => u.update_id), [2]);
});

Deno.test("webhook handler: unknown paths 404, wrong methods 405, and none reach the bot", async () => {
  const { handler, handled } = setup();
  const cases: [string, string, number][] = [
    ["GET", PATH, 405],
    ["PUT", PATH, 405],
    ["POST", "/tg/other", 404],
    ["POST", "/", 404],
    ["GET", "/", 404],
    ["POST", "/healthz", 405],
    ["DELETE", "/readyz", 405],
  ];
  for (const [method, path, status] of cases) {
    const body = method === "GET" ? undefined : update(1);
    const res = await handler.handle(new Request(`${BASE}${path}`, { method, body }));
    assert.equal(res.status, status, `${method} ${path}`);
  }
  assert.equal(handled.length, 0);
});

Deno.test("webhook handler: /healthz is up; /readyz needs the store and an initialised bot", async () => {
  let storeUp = true;
  let initialised = false;
  const { handler } = setup({
    ping: () => storeUp ? Promise.resolve() : Promise.reject(new Error("ECONNREFUSED")),
    initialised: () => initialised,
  });
  const get = (path: string) => handler.handle(new Request(`${BASE}${path}`));
  assert.equal((await get("/healthz")).status, 200);
  assert.equal((await get("/readyz")).status, 503, "bot not initialised");
  initialised = true;
  assert.equal((await get("/readyz")).status, 200);
  storeUp = false;
  const down = await get("/readyz");
  assert.equal(down.status, 503);
  assert.match(await down.text(), /store/);
  assert.equal((await get("/healthz")).status, 200, "healthz does not depend on the store");
});

Deno.test("webhook handler: a middleware failure is logged and still a 200 (no re-send loop)", async () => {
  const { handler } = setup({ handleUpdate: () => Promise.reject(new Error("boom")) });
  assert.equal((await handler.handle(post(update(3)))).status, 200);
  assert.equal(handler.running, 0);
});

Deno.test("webhook handler: a long answer is acknowledged after the bound and goes on, tracked", async () => {
  const clock = new ManualClock();
  const answer = Promise.withResolvers<void>();
  let finished = false;
  const { handler } = setup({
    ackAfterMs: 1000,
    clock,
    handleUpdate: async () => {
      await answer.promise;
      finished = true;
    },
  });
  let acknowledged = false;
  const response = handler.handle(post(update(4))).then((res) => {
    acknowledged = true;
    return res;
  });
  await clock.advance(999);
  assert.equal(acknowledged, false, "not before the bound");
  await clock.advance(1);
  assert.equal((await response).status, 200);
  assert.equal(finished, false, "acknowledged before the answer finished");
  assert.equal(handler.running, 1);
  const drained = handler.drain(5_000);
  // While draining, new updates are refused so Telegram re-sends them later.
  assert.equal((await handler.handle(post(update(5)))).status, 503);
  assert.equal((await handler.handle(new Request(`${BASE}/readyz`))).status, 503);
  answer.resolve();
  assert.equal(await drained, "drained");
  assert.equal(finished, true);
});

Deno.test("webhook handler: with ackAfterMs Infinity (Deno Deploy) the request waits for the answer", async () => {
  const clock = new ManualClock();
  const answer = Promise.withResolvers<void>();
  const { handler } = setup({ ackAfterMs: Infinity, clock, handleUpdate: () => answer.promise });
  let answered = false;
  const response = handler.handle(post(update(6))).then((res) => {
    answered = true;
    return res;
  });
  await clock.advance(3_600_000);
  assert.equal(handler.running, 1);
  assert.equal(answered, false, "answered while the answer was still running");
  answer.resolve();
  assert.equal((await response).status, 200);
});

Deno.test("webhook handler: shutdown gives up after its timeout; the open request gets 503", async () => {
  const answer = Promise.withResolvers<void>();
  const { handler } = setup({ ackAfterMs: Infinity, handleUpdate: () => answer.promise });
  const response = handler.handle(post(update(8)));
  while (handler.running === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  assert.equal(await handler.drain(20), "timeout");
  assert.equal((await response).status, 503);
  answer.resolve();
});

const METRICS_TOKEN = "metrics-token-0123456789";
const metricsSource = { render: () => Promise.resolve("bot_up 1\n"), contentType: "text/plain" };
const scrape = (handler: ReturnType<typeof setup>["handler"], authorization?: string) =>
  handler.handle(
    new Request(`${BASE}/metrics`, {
      headers: authorization === undefined ? {} : { authorization },
    }),
  );

Deno.test("webhook handler: /metrics is 404 when no METRICS_TOKEN is configured", async () => {
  const { handler } = setup();
  const res = await scrape(handler, `Bearer ${METRICS_TOKEN}`);
  assert.equal(res.status, 404);
  assert.doesNotMatch(await res.text(), /bot_up/);
});

Deno.test("webhook handler: /metrics needs the bearer token (401 without it or with another)", async () => {
  const { handler } = setup({ metrics: { source: metricsSource, token: METRICS_TOKEN } });
  for (
    const authorization of [
      undefined,
      "",
      "Bearer",
      "Bearer wrong-token-0123456789",
      `Bearer ${METRICS_TOKEN}x`,
      `Basic ${btoa(`user:${METRICS_TOKEN}`)}`,
      METRICS_TOKEN,
    ]
  ) {
    const res = await scrape(handler, authorization);
    assert.equal(res.status, 401, String(authorization));
    assert.equal(res.headers.get("www-authenticate"), "Bearer");
    assert.doesNotMatch(await res.text(), /bot_up/);
  }
  const ok = await scrape(handler, `Bearer ${METRICS_TOKEN}`);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "bot_up 1\n");
  assert.equal(
    (await scrape(handler, `bearer ${METRICS_TOKEN}`)).status,
    200,
    "scheme is case-insensitive",
  );
  const post = await handler.handle(
    new Request(`${BASE}/metrics`, {
      method: "POST",
      headers: { authorization: `Bearer ${METRICS_TOKEN}` },
    }),
  );
  assert.equal(post.status, 405);
});
