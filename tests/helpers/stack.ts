/**
 * One end-to-end test stack: fake Telegram, fake OpenAI, the store (embedded KV in a
 * fresh file, or a real redis-server), and the real bot process started as the
 * README starts it. `stop()` checks that the bot exited cleanly and that no secret
 * ever appeared in its output.
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { FakeTelegram, type FakeTelegramOptions, type FakeUser } from "../fakes/telegram.ts";
import { FakeOpenAI, type FakeOpenAIOptions } from "../fakes/openai.ts";
import { type BotProcess, spawnBot } from "./bot_process.ts";
import { startRedis } from "./redis.ts";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

export const CHANNEL = { id: -1001234567890, username: "test_channel", title: "Test Channel" };

export interface StackOptions {
  redis?: boolean;
  env?: Record<string, string>;
  telegram?: FakeTelegramOptions;
  openai?: FakeOpenAIOptions;
  /** Make the bot an admin of the channel (default true). */
  botIsAdmin?: boolean;
  /** Webhook mode on a free loopback port instead of long polling. */
  webhook?: boolean;
}

/** Where a webhook-mode bot listens. */
export interface StackWebhook {
  /** WEBHOOK_URL: `http://127.0.0.1:<port>/tg/<random>`. */
  url: string;
  secret: string;
  port: number;
}

export interface Stack {
  telegram: FakeTelegram;
  openai: FakeOpenAI;
  redis?: Awaited<ReturnType<typeof startRedis>>;
  bot: BotProcess;
  env: Record<string, string>;
  /** Set when started with `webhook: true`. */
  webhook?: StackWebhook;
  /** Stops the bot (SIGTERM, must exit 0) and starts it again on the same store. */
  restartBot(): Promise<void>;
  /** A user who is a member of the channel. */
  subscriber(id?: number, language_code?: string): FakeUser;
  /** Bot processes started with {@link startSecondInstance}; `stop()` stops them first. */
  instances: BotProcess[];
  stop(): Promise<void>;
}

let nextUser = 1000;

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** The fakes, the store and the bot's environment of a stack, before any bot runs. */
async function startFakes(options: StackOptions) {
  const telegram = await FakeTelegram.start(options.telegram);
  const openai = await FakeOpenAI.start(options.openai);
  const redis = options.redis ? await startRedis() : undefined;
  telegram.addChannel({ ...CHANNEL, botIsAdmin: options.botIsAdmin ?? true });
  const dataDir = `data/e2e-${crypto.randomUUID()}`;
  let webhook: StackWebhook | undefined;
  if (options.webhook) {
    const port = freePort();
    webhook = {
      url: `http://127.0.0.1:${port}/tg/${crypto.randomUUID()}`,
      secret: crypto.randomUUID().replaceAll("-", ""),
      port,
    };
  }
  const env: Record<string, string> = {
    TELEGRAM_BOT_TOKEN: telegram.token,
    TELEGRAM_API_ROOT: telegram.apiRoot,
    OPENAI_API_KEY: openai.apiKey,
    OPENAI_BASE_URL: openai.baseURL,
    OPENAI_MODEL: "gpt-test",
    CHANNEL_ID: `@${CHANNEL.username}`,
    KV_PATH: `${dataDir}/bot.kv`,
    LOG_LEVEL: "debug",
    SHUTDOWN_TIMEOUT: "10",
    ...(redis ? { REDIS_URL: redis.url } : {}),
    ...(webhook
      ? { WEBHOOK_URL: webhook.url, WEBHOOK_SECRET: webhook.secret, PORT: String(webhook.port) }
      : {}),
    ...options.env,
  };
  const secrets = [telegram.token, openai.apiKey, telegram.token.split(":")[1]];
  if (webhook) secrets.push(webhook.secret);
  const cleanUp = async () => {
    await telegram.close();
    await openai.close();
    await redis?.stop();
    await Deno.remove(`${ROOT}${dataDir}`, { recursive: true }).catch(() => {});
  };
  return { telegram, openai, redis, webhook, env, secrets, cleanUp };
}

function assertNoSecret(output: string, secrets: string[]): void {
  for (const secret of secrets) {
    assert.ok(!output.includes(secret), `a secret appeared in the bot's output:\n${output}`);
  }
}

/** Starts everything and waits until the bot polls (or its webhook is registered). */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const { telegram, openai, redis, webhook, env, secrets, cleanUp } = await startFakes(options);
  const launch = async () => {
    const bot = spawnBot(env);
    try {
      await bot.waitForOutput(webhook ? /Webhook ready as @/ : /Polling as @/);
    } catch (error) {
      await bot.stop("SIGKILL");
      throw error;
    }
    return bot;
  };
  let first: BotProcess;
  try {
    first = await launch();
  } catch (error) {
    await cleanUp();
    throw error;
  }
  const stack: Stack = {
    telegram,
    openai,
    redis,
    env,
    webhook,
    bot: first,
    instances: [],
    async restartBot() {
      assert.equal(await stack.bot.stop("SIGTERM"), 0, stack.bot.output());
      stack.bot = await launch();
    },
    subscriber(id = nextUser++, language_code = "en") {
      telegram.setMember(CHANNEL.id, id, "member");
      telegram.setMember(`@${CHANNEL.username}`, id, "member");
      return { id, first_name: `User${id}`, language_code };
    },
    async stop() {
      try {
        const bots = [...stack.instances, stack.bot];
        const codes: number[] = [];
        for (const bot of bots) codes.push(await bot.stop("SIGTERM"));
        bots.forEach((bot, i) => {
          assertNoSecret(bot.output(), secrets);
          assert.equal(codes[i], 0, `the bot did not exit cleanly:\n${bot.output()}`);
        });
      } finally {
        await cleanUp();
      }
    },
  };
  return stack;
}

/**
 * A second bot process on the same store as a webhook-mode stack (another port, same
 * path and secret), for several-instance tests; the stack stops it (exit 0, no secret
 * printed). Telegram stops pushing updates: the test is the load balancer and POSTs
 * each update to an instance with {@link postUpdate}.
 */
export async function startSecondInstance(
  stack: Stack,
): Promise<{ bot: BotProcess; url: string }> {
  const port = freePort();
  const url = `http://127.0.0.1:${port}${new URL(stack.webhook!.url).pathname}`;
  const bot = spawnBot({ ...stack.env, PORT: String(port), WEBHOOK_URL: url });
  stack.instances.push(bot);
  await bot.waitForOutput(/Webhook ready as @/);
  const { telegram } = stack;
  const off = await fetch(`${telegram.apiRoot}/bot${telegram.token}/deleteWebhook`, {
    method: "POST",
  });
  assert.equal((await off.json()).ok, true);
  return { bot, url };
}

/**
 * POSTs an update to a webhook-mode instance as Telegram would (with the secret);
 * resolves with the HTTP status.
 */
export async function postUpdate(stack: Stack, url: string, update: unknown): Promise<number> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "X-Telegram-Bot-Api-Secret-Token": stack.webhook!.secret,
    },
    body: JSON.stringify(update),
  });
  await response.body?.cancel();
  return response.status;
}

/** A private text message from `user` as an update, made by hand (not through the fake). */
export function messageUpdate(user: FakeUser, text: string, updateId: number) {
  return {
    update_id: updateId,
    message: {
      message_id: 1,
      date: Math.floor(Date.now() / 1000),
      chat: { id: user.id, type: "private", first_name: user.first_name },
      from: { ...user, is_bot: false },
      text,
    },
  };
}

/**
 * Runs `fn` with a fresh stack and always stops it (checking a clean exit and that no
 * secret leaked). The one scaffold of every end-to-end test:
 *
 * ```ts
 * Deno.test("…", () => withStack({ redis: true }, async (stack) => { … }));
 * ```
 */
export async function withStack(
  options: StackOptions,
  fn: (stack: Stack) => Promise<void>,
): Promise<void> {
  const stack = await startStack(options);
  try {
    await fn(stack);
  } finally {
    await stack.stop();
  }
}

/**
 * Starts the bot against the fakes of a stack built from `options` when it is expected
 * to refuse to start; resolves with its exit code and output once it exits (it is
 * killed after 15 s), having checked that no secret was printed.
 */
export async function startExpectingExit(
  options: StackOptions,
): Promise<{ code: number; output: string }> {
  const { env, secrets, cleanUp } = await startFakes(options);
  try {
    const bot = spawnBot(env);
    const timer = setTimeout(() => bot.stop("SIGKILL"), 15_000);
    const code = await bot.exited.finally(() => clearTimeout(timer));
    assert.notEqual(code, 137, `the bot did not exit by itself:\n${bot.output()}`);
    assertNoSecret(bot.output(), secrets);
    return { code, output: bot.output() };
  } finally {
    await cleanUp();
  }
}
