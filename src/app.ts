/**
 * The composition root: reads nothing global, builds every part from the config and
 * passes them in. `main.ts` calls it once; tests can call it with a config that
 * points at fakes.
 */
import { OpenAI } from "openai";
import { getLogger } from "@logtape/logtape";
import type { Bot } from "grammy";
import type { Config } from "./config.ts";
import type { Store } from "./store/store.ts";
import { KvStore } from "./store/kv.ts";
import { RedisStore } from "./store/redis.ts";
import { FallbackStore } from "./store/fallback.ts";
import { createAccessChecker } from "./access.ts";
import type { Assistant } from "./assistant/assistant.ts";
import { createResponsesAssistant } from "./assistant/responses.ts";
import { createAssistantsAssistant } from "./assistant/assistants.ts";
import { createStatelessResponsesAssistant } from "./assistant/stateless_responses.ts";
import { createChatCompletionsAssistant } from "./assistant/chat_completions.ts";
import { createHistory } from "./assistant/history.ts";
import { userFields } from "./assistant/identity.ts";
import { createBot } from "./bot/bot.ts";
import { storeRelay } from "./bot/cancel.ts";
import { createTurnLock, inProcessTurns } from "./turns.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { createStats } from "./stats.ts";
import { createUsage } from "./limits.ts";
import type { BotContext } from "./bot/context.ts";

export interface App {
  bot: Bot<BotContext>;
  store: Store;
  assistant: Assistant;
  metrics: Metrics;
  /** Closes the store; the bot's transport is stopped by its owner first. */
  close(): Promise<void>;
}

/** Opens the store the config asks for: Redis (with an in-memory fallback) or Deno KV. */
export async function openStore(config: Config): Promise<Store> {
  if (config.redis) {
    const redis = new RedisStore(config.redis, getLogger(["bot", "store"]));
    return new FallbackStore(redis);
  }
  // No path: the default database (Deno Deploy's built-in KV); KvStore.open then
  // creates no directory.
  return await KvStore.open(config.kvPath);
}

/** Builds the assistant backend the config selects (`OPENAI_API`, `OPENAI_ASSISTANT_ID`). */
export function createAssistant(config: Config, store: Store): Assistant {
  const client = new OpenAI({
    apiKey: config.openai.apiKey,
    baseURL: config.openai.baseURL,
    // 429 and 5xx are retried with backoff by the SDK (it honours retry-after).
    maxRetries: 3,
    timeout: 120_000,
  });
  const assistant = config.openai.assistant;
  if (assistant.kind === "assistants") {
    return createAssistantsAssistant({ client, store, assistantId: assistant.assistantId });
  }
  const { kind, model, instructions, maxOutputTokens } = assistant;
  const official = !config.openai.baseURL ||
    new URL(config.openai.baseURL).host === "api.openai.com";
  // Hashed user ids go to OpenAI and to servers that serve its Conversations; other
  // compatible servers get only the portable fields.
  const fields = kind === "conversations" || official
    ? userFields(config.openai.safetyIdSalt ?? config.telegram.token)
    : undefined;
  if (kind === "conversations") {
    return createResponsesAssistant({
      client,
      store,
      model,
      instructions,
      compactTokens: assistant.compactTokens,
      maxOutputTokens,
      userFields: fields,
    });
  }
  const options = {
    client,
    model,
    instructions,
    maxOutputTokens,
    official,
    userFields: fields,
    history: createHistory({ store, ...assistant.history }),
    log: getLogger(["bot", "assistant"]),
  };
  return kind === "responses"
    ? createStatelessResponsesAssistant(options)
    : createChatCompletionsAssistant(options);
}

/** Builds the whole app. */
export async function createApp(config: Config): Promise<App> {
  const store = await openStore(config);
  const assistant = createAssistant(config, store);
  const metrics = createMetrics();
  const stats = createStats({ store, resetHourUtc: config.limits.resetHourUtc });
  const usage = createUsage({ store, limits: config.limits, adminIds: config.adminIds });
  // Several instances share Redis (or Deploy's KV); the embedded KV file serves one process.
  const shared = store.kind === "redis" || config.denoDeploy;
  const bot = createBot({
    token: config.telegram.token,
    apiRoot: config.telegram.apiRoot,
    channels: config.channels,
    access: (api) =>
      createAccessChecker({
        getChatMember: (chat, userId) => api.getChatMember(chat, userId),
        store,
        channels: config.channels,
        mode: config.channelMode,
        ttlSeconds: config.subscriptionTtl,
        negativeTtlSeconds: config.subscriptionNegativeTtl,
        log: getLogger(["bot", "access"]),
        onCheck: (result) => {
          metrics.subscriptionCache.inc({ result });
          stats.count(result === "hit" ? "cache_hit" : "cache_miss");
        },
      }),
    assistant,
    store,
    turnLock: shared ? createTurnLock({ store, log: getLogger(["bot", "turns"]) }) : inProcessTurns,
    // With several instances a stop may land on another one than the answer's.
    cancelRelay: shared ? storeRelay(store, getLogger(["bot", "cancel"])) : undefined,
    operator: {
      usage,
      stats,
      metrics,
      adminIds: config.adminIds,
      limits: config.limits,
      storeKind: store.kind,
    },
    log: getLogger(["bot"]),
    replyFormat: config.replyFormat,
  });
  return { bot, store, assistant, metrics, close: () => store.close() };
}
