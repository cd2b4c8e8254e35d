/**
 * Environment → typed, validated {@link Config}.
 *
 * `parseConfig` is pure (an env map in, a config out) so it is unit-tested without
 * touching the process; `loadEnv` does the I/O: it reads `.env` when present and lets
 * the real environment win. Every error is a {@link ConfigError} naming the variable
 * and the fix; a secret's value is never part of a message.
 */
import type { LimitsConfig } from "./limits.ts";

/**
 * How the bot talks to the model (`OPENAI_API`): Responses + Conversations (default),
 * stateless Responses, or Chat Completions; the last two keep the history in the
 * bot's store.
 */
export type OpenAIApi = "conversations" | "responses" | "chat";

/** A backend with the model and instructions in the configuration. */
export interface ModelAssistantConfig {
  kind: OpenAIApi;
  model: string;
  instructions?: string;
  /** `MAX_OUTPUT_TOKENS`; undefined: the model's own limit. */
  maxOutputTokens?: number;
  /** `conversations`: the compaction threshold (`CONTEXT_COMPACT_TOKENS`); undefined: off. */
  compactTokens?: number;
  /** `responses` and `chat`: the bound and the lifetime of the history the bot keeps. */
  history: { maxTokens: number; ttlSeconds: number };
}

/** Where the assistant runs: one of {@link OpenAIApi}, or the legacy Assistants API. */
export type AssistantConfig = ModelAssistantConfig | { kind: "assistants"; assistantId: string };

export type LogLevel = "debug" | "info" | "warning" | "error";

/** How answers are formatted: Telegram rich messages, HTML entities, or plain text. */
export type ReplyFormat = "rich" | "html" | "plain";

export interface RedisConfig {
  url?: string;
  host?: string;
  port?: number;
  db?: number;
  password?: string;
}

export interface WebhookConfig {
  /** The public URL given to setWebhook. */
  url: string;
  /** The path of `url`: the server takes updates there. */
  path: string;
  secret: string;
  port: number;
}

export interface Config {
  telegram: { token: string; apiRoot: string };
  openai: {
    apiKey: string;
    baseURL?: string;
    assistant: AssistantConfig;
    /** `OPENAI_FIRST_TOKEN_TIMEOUT` in ms: no text this long after asking is a stall; 0 = off. */
    firstTokenTimeoutMs: number;
    /** `OPENAI_IDLE_TIMEOUT` in ms: no text this long mid-answer is a stall; 0 = off. */
    idleTimeoutMs: number;
    /** Salt of the hashed user ids sent to OpenAI (`SAFETY_ID_SALT`); unset: the bot token. */
    safetyIdSalt?: string;
    /** The speech-to-text model for voice notes (`OPENAI_TRANSCRIBE_MODEL`). */
    transcribeModel: string;
  };
  /** `@name` or numeric id (as a number) of every channel a user must be subscribed to. */
  channels: (string | number)[];
  /** Seconds a positive subscription check is cached. */
  subscriptionTtl: number;
  /** Seconds a negative check is cached (short, so "Check again" works at once anyway). */
  subscriptionNegativeTtl: number;
  /**
   * Redis when configured; otherwise the embedded Deno KV store at `kvPath`, or the
   * default KV database when `kvPath` is undefined (Deno Deploy's built-in one).
   */
  redis?: RedisConfig;
  kvPath?: string;
  webhook?: WebhookConfig;
  /** Running on Deno Deploy (`DENO_DEPLOYMENT_ID` is set): webhook mode, built-in KV. */
  denoDeploy: boolean;
  adminIds: number[];
  /** `all`: every channel is required (default); `any`: one is enough. */
  channelMode: "all" | "any";
  /** Usage limits (cost control); absent ones are off. */
  limits: LimitsConfig;
  /** Port of the /metrics server (`METRICS_PORT`), in either mode. */
  metricsPort?: number;
  /**
   * `METRICS_TOKEN`: with it the webhook port serves /metrics too, to requests with
   * `Authorization: Bearer <token>`; without it /metrics is only on `metricsPort`.
   */
  metricsToken?: string;
  /** `file`: `LOG_FILE`, rotated past `maxBytes`, keeping `count` old files. */
  log: { level: LogLevel; file?: { path: string; maxBytes: number; count: number } };
  /** Where the answer format fallback chain starts (`REPLY_FORMAT`, default rich). */
  replyFormat: ReplyFormat;
  /** Milliseconds running answers get to finish on SIGINT/SIGTERM. */
  shutdownTimeoutMs: number;
  /**
   * Seconds a process that stopped renewing (it died) keeps its turn locks and its
   * unanswered updates before another process takes them over.
   */
  leaseSeconds: number;
  /**
   * Values that must never be logged: the token, the key, the passwords, the webhook
   * and metrics secrets, and the credentials in `TELEGRAM_API_ROOT`, `OPENAI_BASE_URL`
   * and `REDIS_URL` (see {@link urlCredentials}).
   */
  secrets: string[];
}

/** A configuration problem, with the variable it concerns; the message is one line. */
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

const DEFAULT_MODEL = "gpt-5-mini";
const DEFAULT_TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe";
/** What the public Bot API lets a bot download. */
const TELEGRAM_DOWNLOAD_MB = 20;
/**
 * Compaction starts past this many tokens: well inside the default model's window
 * (gpt-5-mini: 400,000 with up to 128,000 of output) and most others' (128,000), and
 * a bound on what one message can cost.
 */
const DEFAULT_COMPACT_TOKENS = 100_000;
const OPENAI_APIS: OpenAIApi[] = ["conversations", "responses", "chat"];
const DEFAULT_INSTRUCTIONS =
  "You are a helpful assistant in a Telegram chat. Answer in the language of the user's message. " +
  "Use Markdown sparingly: bold, italics, lists, code blocks and links.";
const OPENAI_HOST = "api.openai.com";

function get(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function required(env: Env, name: string, how: string): string {
  const value = get(env, name);
  if (!value) throw new ConfigError(name, `is required: ${how}`);
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = get(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function url(name: string, raw: string, schemes: string[], secret = false): URL {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(
      name,
      // A URL with credentials (`user:pass@`) is not printed either.
      `is not a valid URL${secret || raw.includes("@") ? "" : ` ("${raw}")`}; expected ${
        schemes.join(" or ")
      }//host…`,
    );
  }
  if (!schemes.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${schemes.join(" or ")}//`);
  }
  return parsed;
}

/**
 * The credentials a URL carries, to be kept out of logs: the password (as written and
 * decoded), or the user name when there is no password (`https://<token>@host`). A
 * user name next to a password is usually not secret (Redis's `default`) and would
 * hide that word in every log line.
 */
export function urlCredentials(raw: string | undefined): string[] {
  if (!raw) return [];
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return [];
  }
  const value = parsed.password || parsed.username;
  if (!value) return [];
  let decoded = value;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    // A malformed %-escape: the value as written is all there is.
  }
  return decoded === value ? [value] : [value, decoded];
}

const isLoopback = (host: string) =>
  host === "localhost" || host === "[::1]" || host.startsWith("127.");

/** Parses `CHANNEL_ID`: `@name` or a numeric id, comma-separated for several. */
export function parseChannels(raw: string): (string | number)[] {
  const channels = raw.split(",").map((part) => part.trim()).filter(Boolean);
  if (channels.length === 0) {
    throw new ConfigError("CHANNEL_ID", "is empty: set @channelname or the -100… id");
  }
  return channels.map((channel) => {
    if (/^@[A-Za-z][A-Za-z0-9_]{3,31}$/.test(channel)) return channel;
    if (/^-\d{5,20}$/.test(channel)) return Number(channel);
    throw new ConfigError(
      "CHANNEL_ID",
      `"${channel}" is neither @channelname nor a numeric id like -1001234567890`,
    );
  });
}

function parseIds(name: string, raw: string | undefined): number[] {
  if (!raw) return [];
  return raw.split(",").map((part) => part.trim()).filter(Boolean).map((id) => {
    if (!/^\d{1,20}$/.test(id)) {
      throw new ConfigError(name, `"${id}" is not a numeric Telegram user id`);
    }
    return Number(id);
  });
}

function parseAssistant(env: Env, baseURL: string | undefined): AssistantConfig {
  const assistantId = get(env, "OPENAI_ASSISTANT_ID") ?? get(env, "ASSISTANT_ID");
  const name = get(env, "OPENAI_ASSISTANT_ID") ? "OPENAI_ASSISTANT_ID" : "ASSISTANT_ID";
  if (assistantId) {
    if (get(env, "OPENAI_API")) {
      throw new ConfigError(
        "OPENAI_API",
        `cannot be combined with ${name} (the legacy Assistants backend): remove one of them`,
      );
    }
    if (!/^asst_[A-Za-z0-9]+$/.test(assistantId)) {
      throw new ConfigError(name, `must look like asst_…, got "${assistantId}"`);
    }
    const host = baseURL ? new URL(baseURL).host : OPENAI_HOST;
    if (host === OPENAI_HOST) {
      throw new ConfigError(
        name,
        "OpenAI shut the Assistants API down on 2026-08-26. Remove it and set OPENAI_MODEL " +
          "and OPENAI_INSTRUCTIONS (or OPENAI_INSTRUCTIONS_FILE) instead, or set " +
          "OPENAI_BASE_URL to a server that still serves the Assistants API",
      );
    }
    return { kind: "assistants", assistantId };
  }
  const instructions = get(env, "OPENAI_INSTRUCTIONS");
  const compactTokens = integer(env, "CONTEXT_COMPACT_TOKENS", DEFAULT_COMPACT_TOKENS, 0, 1e7);
  return {
    kind: parseApi(env),
    model: get(env, "OPENAI_MODEL") ?? DEFAULT_MODEL,
    instructions: instructions?.replaceAll("\\n", "\n") ?? DEFAULT_INSTRUCTIONS,
    maxOutputTokens: get(env, "MAX_OUTPUT_TOKENS") === undefined
      ? undefined
      : integer(env, "MAX_OUTPUT_TOKENS", 0, 16, 1_000_000),
    compactTokens: compactTokens === 0 ? undefined : compactTokens,
    history: {
      maxTokens: integer(env, "HISTORY_MAX_TOKENS", 16_000, 1, 1e7),
      ttlSeconds: integer(env, "HISTORY_TTL_DAYS", 30, 1, 3650) * 86_400,
    },
  };
}

function parseApi(env: Env): OpenAIApi {
  const raw = (get(env, "OPENAI_API") ?? "conversations").toLowerCase();
  if (!OPENAI_APIS.includes(raw as OpenAIApi)) {
    throw new ConfigError(
      "OPENAI_API",
      `must be conversations (default), responses or chat, got "${raw}"`,
    );
  }
  return raw as OpenAIApi;
}

function parseRedis(env: Env): RedisConfig | undefined {
  const redisUrl = get(env, "REDIS_URL");
  if (redisUrl) {
    url("REDIS_URL", redisUrl, ["redis:", "rediss:"], true);
    return { url: redisUrl };
  }
  if (!["REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD"].some((n) => get(env, n))) {
    return undefined;
  }
  return {
    host: get(env, "REDIS_HOST") ?? "127.0.0.1",
    port: integer(env, "REDIS_PORT", 6379, 1, 65535),
    db: integer(env, "REDIS_DB", 0, 0, 1_000_000),
    password: get(env, "REDIS_PASSWORD"),
  };
}

function parseWebhook(env: Env): WebhookConfig | undefined {
  const raw = get(env, "WEBHOOK_URL");
  if (!raw) return undefined;
  const parsed = url("WEBHOOK_URL", raw, ["https:", "http:"]);
  if (parsed.protocol === "http:" && !isLoopback(parsed.hostname)) {
    throw new ConfigError("WEBHOOK_URL", "must be https:// (Telegram sends updates only over TLS)");
  }
  const secret = required(
    env,
    "WEBHOOK_SECRET",
    "webhook mode needs a secret of 1–256 characters A-Z a-z 0-9 _ - (e.g. `openssl rand -hex 32`)",
  );
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(secret)) {
    throw new ConfigError(
      "WEBHOOK_SECRET",
      "must be 1–256 characters of A-Z a-z 0-9 _ - (Telegram's rule)",
    );
  }
  return {
    url: parsed.href,
    path: parsed.pathname,
    secret,
    port: integer(env, "PORT", 8000, 1, 65535),
  };
}

function parseMetricsToken(env: Env): string | undefined {
  const token = get(env, "METRICS_TOKEN");
  if (token !== undefined && !/^[A-Za-z0-9._~+\/=-]{16,256}$/.test(token)) {
    throw new ConfigError(
      "METRICS_TOKEN",
      "must be 16–256 characters of A-Z a-z 0-9 . _ ~ + / = - (e.g. `openssl rand -hex 32`)",
    );
  }
  return token;
}

function parseMetricsPort(
  env: Env,
  webhook: WebhookConfig | undefined,
  denoDeploy: boolean,
): number | undefined {
  const port = optionalInteger(env, "METRICS_PORT", 65535);
  if (port !== undefined && denoDeploy) {
    throw new ConfigError(
      "METRICS_PORT",
      "is not available on Deno Deploy (an app serves one port): unset it and set " +
        "METRICS_TOKEN to serve /metrics on the webhook URL's host",
    );
  }
  if (port !== undefined && port === webhook?.port) {
    throw new ConfigError(
      "METRICS_PORT",
      `is the webhook's PORT (${port}): give it another port (keep it closed to the internet), ` +
        "or unset it and set METRICS_TOKEN to serve /metrics on the webhook port",
    );
  }
  return port;
}

function parseLogLevel(env: Env): LogLevel {
  const raw = (get(env, "LOG_LEVEL") ?? "info").toLowerCase();
  const level = raw === "warn" ? "warning" : raw;
  if (!["debug", "info", "warning", "error"].includes(level)) {
    throw new ConfigError("LOG_LEVEL", `must be debug, info, warning or error, got "${raw}"`);
  }
  return level as LogLevel;
}

function optionalInteger(env: Env, name: string, max: number): number | undefined {
  return get(env, name) === undefined ? undefined : integer(env, name, 0, 1, max);
}

function parseLogFile(env: Env): Config["log"]["file"] {
  const maxBytes = integer(env, "LOG_FILE_MAX_BYTES", 10 * 1024 * 1024, 1024, 2 ** 40);
  const count = integer(env, "LOG_FILE_COUNT", 5, 1, 1000);
  const path = get(env, "LOG_FILE");
  return path ? { path, maxBytes, count } : undefined;
}

function parseLimits(env: Env, apiRoot: string): LimitsConfig {
  const maxFileMb = integer(env, "MAX_FILE_MB", TELEGRAM_DOWNLOAD_MB, 1, 2000);
  if (maxFileMb > TELEGRAM_DOWNLOAD_MB && new URL(apiRoot).host === "api.telegram.org") {
    throw new ConfigError(
      "MAX_FILE_MB",
      `api.telegram.org lets bots download at most ${TELEGRAM_DOWNLOAD_MB} MB: set it to ` +
        `${TELEGRAM_DOWNLOAD_MB} or less, or point TELEGRAM_API_ROOT at a local Bot API server`,
    );
  }
  return {
    messagesPerMinute: optionalInteger(env, "LIMIT_MESSAGES_PER_MINUTE", 10_000),
    answersPerDay: optionalInteger(env, "LIMIT_ANSWERS_PER_DAY", 1_000_000),
    tokensPerDay: optionalInteger(env, "LIMIT_TOKENS_PER_DAY", 1e12),
    globalTokensPerDay: optionalInteger(env, "LIMIT_GLOBAL_TOKENS_PER_DAY", 1e15),
    audioSecondsPerDay: optionalInteger(env, "LIMIT_AUDIO_SECONDS_PER_DAY", 86_400),
    // Telegram's own limit for one message: a longer text arrives split in several.
    maxMessageChars: integer(env, "MAX_MESSAGE_CHARS", 4096, 1, 1_000_000),
    resetHourUtc: integer(env, "LIMITS_RESET_HOUR_UTC", 0, 0, 23),
    maxFileMb,
  };
}

function parseChannelMode(env: Env): "all" | "any" {
  const raw = (get(env, "CHANNEL_MODE") ?? "all").toLowerCase();
  if (raw !== "all" && raw !== "any") {
    throw new ConfigError("CHANNEL_MODE", `must be all or any, got "${raw}"`);
  }
  return raw;
}

function parseReplyFormat(env: Env): ReplyFormat {
  const raw = (get(env, "REPLY_FORMAT") ?? "rich").toLowerCase();
  if (raw !== "rich" && raw !== "html" && raw !== "plain") {
    throw new ConfigError("REPLY_FORMAT", `must be rich, html or plain, got "${raw}"`);
  }
  return raw;
}

/**
 * Builds the configuration from an environment map. Throws {@link ConfigError} on the
 * first missing or malformed variable. `OPENAI_INSTRUCTIONS_FILE` must already be
 * resolved into `OPENAI_INSTRUCTIONS` (see {@link loadEnv}).
 */
export function parseConfig(env: Env): Config {
  const token = required(
    env,
    "TELEGRAM_BOT_TOKEN",
    "create a bot with @BotFather and put its token here",
  );
  if (!/^\d+:[A-Za-z0-9_-]{30,}$/.test(token)) {
    throw new ConfigError(
      "TELEGRAM_BOT_TOKEN",
      "is malformed: expected <digits>:<secret> exactly as @BotFather gives it",
    );
  }
  const apiRoot = get(env, "TELEGRAM_API_ROOT") ?? "https://api.telegram.org";
  url("TELEGRAM_API_ROOT", apiRoot, ["https:", "http:"]);

  const apiKey = required(
    env,
    "OPENAI_API_KEY",
    "create a key at https://platform.openai.com/api-keys",
  );
  const baseURL = get(env, "OPENAI_BASE_URL");
  if (baseURL) url("OPENAI_BASE_URL", baseURL, ["https:", "http:"]);

  const channels = parseChannels(
    required(env, "CHANNEL_ID", "set the channel users must join: @channelname or -100… id"),
  );
  const redis = parseRedis(env);
  const webhook = parseWebhook(env);
  // Deno Deploy sets DENO_DEPLOYMENT_ID. It is outside the permission set, so a
  // local run never sees it (env "ignore" reads it as unset).
  const denoDeploy = !!get(env, "DENO_DEPLOYMENT_ID");
  if (denoDeploy && !webhook) {
    throw new ConfigError(
      "WEBHOOK_URL",
      "is required on Deno Deploy (it cannot poll): set it to your app's URL plus a path, " +
        "e.g. https://my-bot.deno.dev/telegram, and set WEBHOOK_SECRET",
    );
  }
  if (denoDeploy && get(env, "KV_PATH")) {
    throw new ConfigError(
      "KV_PATH",
      "is not used on Deno Deploy, which has no writable disk: remove it (the app's " +
        "built-in KV database is used) or set REDIS_URL",
    );
  }
  const metricsToken = parseMetricsToken(env);
  const safetyIdSalt = get(env, "SAFETY_ID_SALT");
  const secrets = [
    ...new Set(
      [
        token,
        apiKey,
        redis?.password,
        webhook?.secret,
        metricsToken,
        safetyIdSalt,
        ...urlCredentials(apiRoot),
        ...urlCredentials(baseURL),
        ...urlCredentials(redis?.url),
      ].filter((s): s is string => !!s),
    ),
  ];

  return {
    telegram: { token, apiRoot: apiRoot.replace(/\/+$/, "") },
    openai: {
      apiKey,
      baseURL,
      assistant: parseAssistant(env, baseURL),
      firstTokenTimeoutMs: integer(env, "OPENAI_FIRST_TOKEN_TIMEOUT", 30, 0, 3600) * 1000,
      idleTimeoutMs: integer(env, "OPENAI_IDLE_TIMEOUT", 60, 0, 3600) * 1000,
      safetyIdSalt,
      transcribeModel: get(env, "OPENAI_TRANSCRIBE_MODEL") ?? DEFAULT_TRANSCRIBE_MODEL,
    },
    channels,
    subscriptionTtl: integer(env, "SUBSCRIPTION_CACHE_TTL", 600, 1, 86_400 * 30),
    subscriptionNegativeTtl: integer(env, "SUBSCRIPTION_NEGATIVE_TTL", 60, 1, 86_400),
    redis,
    kvPath: denoDeploy ? undefined : get(env, "KV_PATH") ?? "data/bot.kv",
    webhook,
    denoDeploy,
    adminIds: parseIds("ADMIN_USER_IDS", get(env, "ADMIN_USER_IDS")),
    channelMode: parseChannelMode(env),
    limits: parseLimits(env, apiRoot),
    metricsPort: parseMetricsPort(env, webhook, denoDeploy),
    metricsToken,
    log: { level: parseLogLevel(env), file: parseLogFile(env) },
    replyFormat: parseReplyFormat(env),
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT", 25, 1, 3600) * 1000,
    leaseSeconds: integer(env, "LEASE_SECONDS", 30, 2, 3600),
    secrets,
  };
}

/**
 * Parses the text of a `.env` file: `KEY=value` lines, `#` comments, optional
 * `export `, single quotes taken literally, double quotes with `\n` escapes.
 */
export function parseDotEnv(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const match = line.match(/^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/);
    if (!match) continue;
    const [, key, rawValue] = match;
    let value = rawValue;
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) {
      value = value.slice(1, -1).replaceAll("\\n", "\n").replaceAll('\\"', '"');
    } else if (value.startsWith("'") && value.endsWith("'") && value.length >= 2) {
      value = value.slice(1, -1);
    } else {
      value = value.replace(/\s+#.*$/, "");
    }
    vars[key] = value;
  }
  return vars;
}

/**
 * The process environment merged over `.env` (read from the working directory when
 * present; the real environment wins), with `OPENAI_INSTRUCTIONS_FILE` read into
 * `OPENAI_INSTRUCTIONS`. The compiled binary relies on this too: `.env` is read at run
 * time, never embedded at compile time.
 */
export async function loadEnv(path = ".env"): Promise<Env> {
  let fromFile: Record<string, string> = {};
  try {
    fromFile = parseDotEnv(await Deno.readTextFile(path));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new ConfigError(".env", `cannot be read: ${(error as Error).message}`);
    }
  }
  const env: Env = { ...fromFile, ...Deno.env.toObject() };
  const file = get(env, "OPENAI_INSTRUCTIONS_FILE");
  if (file && !get(env, "OPENAI_INSTRUCTIONS")) {
    try {
      env.OPENAI_INSTRUCTIONS = await Deno.readTextFile(file);
    } catch (error) {
      const hint = error instanceof Deno.errors.NotCapable
        ? "the permission set lets the bot read only .env and data/: put the file in data/"
        : (error as Error).message;
      throw new ConfigError("OPENAI_INSTRUCTIONS_FILE", `cannot read "${file}": ${hint}`);
    }
  }
  return env;
}
