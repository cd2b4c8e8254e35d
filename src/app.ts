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
import { createAccessChecker } from "./access.ts";
import type { Assistant } from "./assistant/assistant.ts";
import { createResponsesAssistant } from "./assistant/responses.ts";
import { createAssistantsAssistant } from "./assistant/assistants.ts";
import { withStallDetection } from "./assistant/stall.ts";
import { botHandlers, createBot, registerCommands } from "./bot/bot.ts";
import { ApiSupport } from "./bot/deliver.ts";
import { createStatelessResponsesAssistant } from "./assistant/stateless_responses.ts";
import { createChatCompletionsAssistant } from "./assistant/chat_completions.ts";
import { createHistory } from "./assistant/history.ts";
import { userFields } from "./assistant/identity.ts";
import { storeRelay } from "./bot/cancel.ts";
import { createTurnLock, inProcessTurns, markDone } from "./turns.ts";
import { createMedia } from "./media/media.ts";
import { createMetrics, type Metrics } from "./metrics.ts";
import { createStats } from "./stats.ts";
import { createUsage } from "./limits.ts";
import { createLedger } from "./ledger.ts";
import { Inbox } from "./inbox.ts";
import type { BotContext } from "./bot/context.ts";

export interface App {
  bot: Bot<BotContext>;
  store: Store;
  assistant: Assistant;
  metrics: Metrics;
  /** Accepted updates until they are answered; the transports record into it. */
  inbox: Inbox;
  /** Sets the command menu (English and Russian); failures only warn. */
  registerCommands(): Promise<void>;
  /** Closes the store; the bot's transport is stopped by its owner first. */
  close(): Promise<void>;
}

/** Opens the store the config asks for: Redis (with an in-memory fallback) or Deno KV. */
async function openStore(config: Config): Promise<Store> {
  if (config.redis) {
    // Loaded only when configured: ioredis costs memory and start-up time otherwise.
    const { RedisStore } = await import("./store/redis.ts");
    const { FallbackStore } = await import("./store/fallback.ts");
    return new FallbackStore(new RedisStore(config.redis, getLogger(["bot", "store"])));
  }
  // No path: the default database (Deno Deploy's built-in KV); KvStore.open then
  // creates no directory.
  return await KvStore.open(config.kvPath);
}

/**
 * Builds the assistant backend the config selects (`OPENAI_API`, `OPENAI_ASSISTANT_ID`),
 * with stall detection (`stall.ts`). A first-token stall is asked again except on the
 * Assistants backend, which has already added the user's message to the thread;
 * elsewhere an aborted call adds nothing (Conversations) or nothing is stored before
 * delivery (`responses`, `chat`).
 */
export function createAssistant(config: Config, store: Store, client: OpenAI): Assistant {
  const backend = createBackend(config, store, client);
  return withStallDetection(backend, {
    firstTokenMs: config.openai.firstTokenTimeoutMs,
    idleMs: config.openai.idleTimeoutMs,
    retry: backend.kind !== "assistants",
  });
}

/** The OpenAI client for the configured endpoint and key. */
export function openAIClient(config: Config): OpenAI {
  return new OpenAI({
    apiKey: config.openai.apiKey,
    baseURL: config.openai.baseURL,
    // 429 and 5xx are retried with backoff by the SDK (it honours retry-after).
    maxRetries: 3,
    timeout: 120_000,
  });
}

function createBackend(config: Config, store: Store, client: OpenAI): Assistant {
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
  const log = getLogger(["bot"]);
  const store = await openStore(config);
  // One client for answers and transcriptions: one connection pool, one retry policy.
  const client = openAIClient(config);
  const assistant = createAssistant(config, store, client);
  const metrics = createMetrics();
  const stats = createStats({ store, resetHourUtc: config.limits.resetHourUtc });
  const usage = createUsage({ store, limits: config.limits, adminIds: config.adminIds });
  const ledger = createLedger({ usage, stats, metrics, log });
  const bot = createBot(config.telegram, ledger, log);
  // On the bot's API, so getChatMember gets the ledger's counting and auto-retry.
  const access = createAccessChecker({
    getChatMember: (chat, userId) => bot.api.getChatMember(chat, userId),
    store,
    channels: config.channels,
    mode: config.channelMode,
    ttlSeconds: config.subscriptionTtl,
    negativeTtlSeconds: config.subscriptionNegativeTtl,
    log: getLogger(["bot", "access"]),
    onCheck: (result) => ledger.subscriptionCheck(result),
  });
  // Several instances share Redis (or Deploy's KV); the embedded KV file serves one process.
  const shared = store.kind === "redis" || config.denoDeploy;
  const inbox = new Inbox({
    store,
    shared,
    log: getLogger(["bot", "inbox"]),
    leaseSeconds: config.leaseSeconds,
  });
  bot.use(botHandlers({
    access,
    assistant,
    turns: {
      store,
      lock: shared
        ? createTurnLock({
          store,
          log: getLogger(["bot", "turns"]),
          ttlSeconds: config.leaseSeconds,
        })
        : inProcessTurns,
      // With several instances a stop may land on another one than the answer's.
      relay: shared ? storeRelay(store, getLogger(["bot", "cancel"])) : undefined,
      inbox,
    },
    operator: {
      ledger,
      usage,
      stats,
      metrics,
      adminIds: config.adminIds,
      limits: config.limits,
      storeKind: store.kind,
    },
    replies: { format: config.replyFormat, support: new ApiSupport(log) },
    media: createMedia({
      api: bot.api,
      telegram: config.telegram,
      client,
      transcribeModel: config.openai.transcribeModel,
      maxFileMb: config.limits.maxFileMb,
      settled: async (updateIds) => {
        await Promise.all(updateIds.map((id) => markDone(store, id)));
      },
    }),
    log,
  }));
  return {
    bot,
    store,
    assistant,
    metrics,
    inbox,
    registerCommands: () => registerCommands(bot, log),
    close: () => store.close(),
  };
}
