/**
 * Webhook mode: an HTTP server (`Deno.serve`) that takes Telegram's updates on the
 * path of `WEBHOOK_URL`, plus `GET /healthz` (the process is up) and `GET /readyz`
 * (the store answers and the bot is initialised).
 *
 * `GET /metrics` is not public: this port faces the internet through the proxy, and
 * the metrics tell anyone how busy the bot is and what fails. It is served here only
 * when `METRICS_TOKEN` is set and the request carries `Authorization: Bearer <token>`
 * (compared in constant time; 401 otherwise); without a token it is 404 like any
 * unknown path. `METRICS_PORT` serves it without a token on a separate port
 * (`metrics_server.ts`), in this mode as in polling.
 *
 * Requests are checked before anything reaches the bot: the
 * `X-Telegram-Bot-Api-Secret-Token` header must equal `WEBHOOK_SECRET` (compared in
 * constant time over SHA-256 digests) or the answer is 401; the body is read up to
 * {@link MAX_BODY_BYTES} (413 beyond, whatever Content-Length claims) and must be a
 * JSON object with an integer `update_id` (400 otherwise). Other paths get 404, other
 * methods 405. No input can crash the server: an unexpected error is a 500.
 *
 * The updates are handled here with `bot.handleUpdate` rather than grammY's
 * `webhookCallback` (whose secret check is constant-time too, since 1.46), because
 * that reads bodies without a limit, answers 500 after a middleware error (so Telegram
 * re-sends an update that was already answered) and cannot hand a running answer over
 * to the shutdown.
 *
 * Long answers. Telegram waits about 60 s for a webhook response, then closes the
 * connection and sends the update again. An update is handled inside its request, so
 * the 200 tells Telegram it was answered; past {@link ACK_AFTER_MS} the request is
 * acknowledged and the answer goes on in the background. Every answer, in the
 * request or after it, is tracked, and shutdown waits for it (see `drain`).
 *
 * Deno Deploy does not guarantee work after a response is sent (an idle instance may
 * be stopped), so there `ackAfterMs` is `Infinity`: the request stays open until the
 * answer is complete. An answer longer than Telegram's patience is then re-sent by
 * Telegram while the first request still works on it; the update_id deduplication in
 * the bot makes that re-send a no-op, so the message is still answered once.
 */
import { type Bot, BotError } from "grammy";
import type { Inbox } from "../inbox.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Update } from "grammy/types";
import type { Logger } from "@logtape/logtape";
import type { WebhookConfig } from "../config.ts";
import { ALLOWED_UPDATES } from "../bot/bot.ts";
import type { BotContext } from "../bot/context.ts";
import { InFlight } from "./inflight.ts";
import type { Metrics } from "../metrics.ts";

/**
 * How long an update is handled inside its request before it is acknowledged.
 * telegram-bot-api sends one chat's updates one at a time, each after the previous
 * request was answered, so holding a request for a whole answer would hold back the
 * user's next message and their stop button (a `stopped_message_generation` update)
 * until the answer is done. One second lets quick updates (commands, the gate) finish
 * inside their request; longer answers go on in the background, tracked for shutdown.
 * (Telegram itself waits up to about 60 s: tdlib/telegram-bot-api#211 and #341.)
 */
export const ACK_AFTER_MS = 1_000;

/** Updates are small (a message is at most 4096 characters plus metadata); 1 MiB is ample. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * setWebhook's `max_connections`: Telegram's maximum. Each request stays open while
 * its answer is produced, so this bounds how many users are answered at once.
 */
export const MAX_CONNECTIONS = 100;

/** How long /readyz waits for the store before it answers 503. */
const READY_PING_TIMEOUT_MS = 2_000;

/** How long `server.shutdown()` may take once the answers are done. */
const SERVER_SHUTDOWN_TIMEOUT_MS = 2_000;

const SECRET_HEADER = "x-telegram-bot-api-secret-token";

/** The token of an `Authorization: Bearer <token>` header; null for any other header. */
function bearerToken(header: string | null): string | null {
  const match = header?.match(/^Bearer +(\S+) *$/i);
  return match ? match[1] : null;
}

export interface WebhookHandlerOptions {
  /** The path updates are POSTed to, e.g. `/tg/hook`. */
  path: string;
  /** The expected `X-Telegram-Bot-Api-Secret-Token`. */
  secret: string;
  /** Handles one update; resolves when its answer is complete. */
  handleUpdate(update: Update): Promise<void>;
  /** Records an accepted update (the inbox) before the 200 can go out. */
  record?(update: Update): Promise<void>;
  /** Resolves when the store answers (for /readyz). */
  ping(): Promise<void>;
  /** Whether the bot is initialised (for /readyz). */
  initialised(): boolean;
  /**
   * Serves `GET /metrics` to requests with `Authorization: Bearer <token>` (401
   * without it or with another token). Without it `/metrics` is 404.
   */
  metrics?: { source: Pick<Metrics, "render" | "contentType">; token: string };
  log: Logger;
  /** See {@link ACK_AFTER_MS} (the default); `Infinity` holds every request until its answer is done. */
  ackAfterMs?: number;
  /** Default {@link MAX_BODY_BYTES}. */
  maxBodyBytes?: number;
  /** Times the acknowledgement (tests drive it by hand); default the system clock. */
  clock?: Clock;
}

export interface WebhookHandler {
  /** Answers one HTTP request; never rejects. */
  handle(request: Request, info?: { remoteAddr?: Deno.Addr }): Promise<Response>;
  /**
   * Refuses new updates from now on (503, so Telegram re-sends them later) and
   * resolves once every running answer is done, or after `timeoutMs` with
   * `"timeout"`; requests still open then are answered 503.
   */
  drain(timeoutMs: number): Promise<"drained" | "timeout">;
  /** Answers running now, in requests or after them. */
  readonly running: number;
  /** Handles an update that came another way (taken over from the inbox), tracked for `drain`. */
  adopt(update: Update): Promise<void>;
}

const text = (status: number, body: string, headers?: HeadersInit) =>
  new Response(body, { status, headers: { "content-type": "text/plain", ...headers } });

const encoder = new TextEncoder();

async function sha256(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(value)));
}

/**
 * Compares digests, not the strings: both are 32 bytes whatever the input, so the
 * loop's time says nothing about the secret, not even its length.
 */
async function secretMatches(
  given: string | null,
  expected: Promise<Uint8Array>,
): Promise<boolean> {
  const [a, b] = await Promise.all([sha256(given ?? ""), expected]);
  let diff = given === null ? 1 : 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** The body, or `"too large"` once more than `max` bytes arrived (the rest is not read). */
async function readBody(request: Request, max: number): Promise<Uint8Array | "too large"> {
  const declared = Number(request.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await request.body?.cancel().catch(() => {});
    return "too large";
  }
  if (!request.body) return new Uint8Array();
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => {});
      return "too large";
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

/** The update in `body`, or a reason it is not one. */
function parseUpdate(body: Uint8Array): Update | string {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return "not JSON";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "not a JSON object";
  }
  const id = (value as { update_id?: unknown }).update_id;
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 0) {
    return "no integer update_id";
  }
  return value as Update;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const remote = (info?: { remoteAddr?: Deno.Addr }) => {
  const addr = info?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : "unknown";
};

/** Builds the request handler (no server: tests call `handle` with plain Requests). */
export function createWebhookHandler(options: WebhookHandlerOptions): WebhookHandler {
  const { path, log, handleUpdate } = options;
  const ackAfterMs = options.ackAfterMs ?? ACK_AFTER_MS;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const clock = options.clock ?? systemClock;
  const expected = sha256(options.secret);
  const metricsToken = options.metrics ? sha256(options.metrics.token) : undefined;
  const answers = new InFlight();
  let draining = false;
  const giveUp = Promise.withResolvers<"gave up">();

  const refuse = (
    status: number,
    reason: string,
    info: { remoteAddr?: Deno.Addr } | undefined,
    level: "debug" | "warning" = "warning",
  ) => {
    log[level]("Webhook: refused a request ({status}, {reason}) from {remote}", {
      status,
      reason,
      remote: remote(info),
    });
    return text(status, reason);
  };

  const run = (update: Update) =>
    answers.track(
      handleUpdate(update).catch((error) => {
        log.error("Webhook: update {updateId} failed: {error}", {
          updateId: update.update_id,
          error,
        });
      }),
    );

  async function accept(update: Update): Promise<Response> {
    await options.record?.(update);
    const work = run(update).then(() => "done" as const);
    const answered = new AbortController();
    const racers: Promise<"done" | "ack" | "gave up">[] = [work, giveUp.promise];
    if (Number.isFinite(ackAfterMs)) {
      racers.push(clock.sleep(ackAfterMs, answered.signal).then(() => "ack" as const));
    }
    const outcome = await Promise.race(racers);
    answered.abort("answered");
    if (outcome === "ack") {
      // Most answers outlast the acknowledgement: not worth a line at info.
      log.debug(
        "Webhook: update {updateId} still being answered after {seconds} s; acknowledged, the answer goes on",
        { updateId: update.update_id, seconds: ackAfterMs / 1000 },
      );
    }
    // Shutdown gave up on this answer: not a 200, so Telegram knows it was not answered.
    if (outcome === "gave up") return text(503, "shutting down");
    return new Response(null, { status: 200 });
  }

  async function route(request: Request, info?: { remoteAddr?: Deno.Addr }): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === path && request.method === "POST") {
      if (!await secretMatches(request.headers.get(SECRET_HEADER), expected)) {
        return refuse(401, "wrong or missing secret token", info);
      }
      if (draining) return refuse(503, "shutting down", info, "debug");
      let body: Uint8Array | "too large";
      try {
        body = await readBody(request, maxBodyBytes);
      } catch {
        return refuse(400, "unreadable body", info);
      }
      if (body === "too large") return refuse(413, `body over ${maxBodyBytes} bytes`, info);
      const update = parseUpdate(body);
      if (typeof update === "string") return refuse(400, update, info);
      return await accept(update);
    }
    const isGet = request.method === "GET" || request.method === "HEAD";
    if (url.pathname === "/healthz") {
      return isGet ? text(200, "ok") : refuse(405, "method not allowed", info, "debug");
    }
    if (url.pathname === "/metrics" && options.metrics && metricsToken) {
      if (!isGet) return refuse(405, "method not allowed", info, "debug");
      const given = bearerToken(request.headers.get("authorization"));
      if (!await secretMatches(given, metricsToken)) {
        log.warning(
          "Webhook: refused /metrics (401, wrong or missing METRICS_TOKEN) from {remote}",
          {
            remote: remote(info),
          },
        );
        return text(401, "wrong or missing bearer token", { "www-authenticate": "Bearer" });
      }
      const { source } = options.metrics;
      return new Response(await source.render(), {
        headers: { "content-type": source.contentType },
      });
    }
    if (url.pathname === "/readyz") {
      if (!isGet) return refuse(405, "method not allowed", info, "debug");
      if (draining) return text(503, "shutting down");
      if (!options.initialised()) return text(503, "bot not initialised");
      try {
        await withTimeout(options.ping(), READY_PING_TIMEOUT_MS);
      } catch (error) {
        log.debug("Webhook: /readyz: the store does not answer: {error}", { error });
        return text(503, "store unreachable");
      }
      return text(200, "ready");
    }
    if (url.pathname === path) {
      return refuse(405, "method not allowed", info, "debug");
    }
    return refuse(404, "not found", info, "debug");
  }

  return {
    async handle(request, info) {
      try {
        return await route(request, info);
      } catch (error) {
        log.error("Webhook: request failed: {error}", { error });
        return text(500, "internal error");
      }
    },
    async drain(timeoutMs) {
      draining = true;
      const outcome = await answers.drain(timeoutMs);
      if (outcome === "timeout") giveUp.resolve("gave up");
      return outcome;
    },
    get running() {
      return answers.size;
    },
    adopt: run,
  };
}

/** Hands an update to the bot; a middleware error goes to the bot's error handler (`bot.catch`). */
export function botUpdateHandler(bot: Bot<BotContext>): (update: Update) => Promise<void> {
  return async (update) => {
    try {
      await bot.handleUpdate(update);
    } catch (error) {
      if (error instanceof BotError) await bot.errorHandler(error);
      else throw error;
    }
  };
}

export interface WebhookServerOptions {
  webhook: WebhookConfig;
  /** Accepted updates are recorded here before the 200, and orphans taken over. */
  inbox: Inbox;
  /** For /readyz. */
  ping(): Promise<void>;
  /** For /metrics, served on this port only with {@link metricsToken}. */
  metrics?: Pick<Metrics, "render" | "contentType">;
  /** `METRICS_TOKEN`: the bearer token /metrics needs here; without it /metrics is 404. */
  metricsToken?: string;
  log: Logger;
  /** See {@link WebhookHandlerOptions.ackAfterMs}. */
  ackAfterMs?: number;
}

export interface WebhookServer {
  /** The address the server listens on. */
  readonly addr: Deno.NetAddr;
  /**
   * Refuses new updates, waits for running answers (at most `timeoutMs`), then
   * closes the server. The webhook stays registered for the next start.
   */
  stop(timeoutMs: number): Promise<"drained" | "timeout">;
}

/**
 * Starts the server on `webhook.port` (all interfaces), then registers the webhook
 * with Telegram. Rejects (with the server closed) when the port cannot be bound or
 * Telegram refuses setWebhook. The bot must be initialised.
 */
export async function startWebhook(
  bot: Bot<BotContext>,
  options: WebhookServerOptions,
): Promise<WebhookServer> {
  const { webhook, log } = options;
  const handler = createWebhookHandler({
    path: webhook.path,
    secret: webhook.secret,
    handleUpdate: botUpdateHandler(bot),
    record: (update) => options.inbox.record([update]),
    ping: options.ping,
    initialised: () => bot.isInited(),
    metrics: options.metrics && options.metricsToken
      ? { source: options.metrics, token: options.metricsToken }
      : undefined,
    log,
    ackAfterMs: options.ackAfterMs,
  });
  const server = Deno.serve({
    port: webhook.port,
    // Deno prints "Listening on …" itself unless told otherwise.
    onListen: () => {},
    onError: (error) => {
      log.error("Webhook: request failed: {error}", { error });
      return text(500, "internal error");
    },
  }, (request, info) => handler.handle(request, info));
  const addr = server.addr;
  try {
    await bot.api.setWebhook(webhook.url, {
      secret_token: webhook.secret,
      allowed_updates: [...ALLOWED_UPDATES],
      max_connections: MAX_CONNECTIONS,
      drop_pending_updates: false,
    });
  } catch (error) {
    await server.shutdown();
    throw error;
  }
  await options.inbox.start(handler.adopt);
  log.info("Webhook ready as @{username}: {url} (listening on port {port})", {
    username: bot.botInfo.username,
    url: webhook.url,
    port: addr.port,
  });
  return {
    addr,
    async stop(timeoutMs) {
      await options.inbox.stop();
      const outcome = await handler.drain(timeoutMs);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.shutdown(),
        new Promise((resolve) => timer = setTimeout(resolve, SERVER_SHUTDOWN_TIMEOUT_MS)),
      ]);
      clearTimeout(timer);
      return outcome;
    },
  };
}
