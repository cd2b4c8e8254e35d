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
}

export interface Stack {
  telegram: FakeTelegram;
  openai: FakeOpenAI;
  redis?: Awaited<ReturnType<typeof startRedis>>;
  bot: BotProcess;
  env: Record<string, string>;
  /** Stops the bot (SIGTERM, must exit 0) and starts it again on the same store. */
  restartBot(): Promise<void>;
  /** A user who is a member of the channel. */
  subscriber(id?: number, language_code?: string): FakeUser;
  stop(): Promise<void>;
}

let nextUser = 1000;

/** Starts everything and waits until the bot polls. */
export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const telegram = await FakeTelegram.start(options.telegram);
  const openai = await FakeOpenAI.start(options.openai);
  const redis = options.redis ? await startRedis() : undefined;
  telegram.addChannel({ ...CHANNEL, botIsAdmin: options.botIsAdmin ?? true });
  const dataDir = `data/e2e-${crypto.randomUUID()}`;
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
    ...options.env,
  };
  const launch = async () => {
    const bot = spawnBot(env);
    await bot.waitForOutput(/Polling as @/);
    return bot;
  };
  const stack: Stack = {
    telegram,
    openai,
    redis,
    env,
    bot: await launch(),
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
        const code = await stack.bot.stop("SIGTERM");
        const output = stack.bot.output();
        for (const secret of [telegram.token, openai.apiKey, telegram.token.split(":")[1]]) {
          assert.ok(!output.includes(secret), `a secret appeared in the bot's output:\n${output}`);
        }
        assert.equal(code, 0, `the bot did not exit cleanly:\n${output}`);
      } finally {
        await telegram.close();
        await openai.close();
        await redis?.stop();
        await Deno.remove(`${ROOT}${dataDir}`, { recursive: true }).catch(() => {});
      }
    },
  };
  return stack;
}
