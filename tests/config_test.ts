import assert from "node:assert/strict";
import { ConfigError, parseChannels, parseConfig, parseDotEnv } from "../src/config.ts";
import { FakeTelegram } from "./fakes/telegram.ts";

const TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789";
const KEY = "sk-proj-verysecretkey123";
const base = { TELEGRAM_BOT_TOKEN: TOKEN, OPENAI_API_KEY: KEY, CHANNEL_ID: "@my_channel" };

function configError(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("config: defaults for a minimal environment", () => {
  const config = parseConfig(base);
  assert.equal(config.telegram.apiRoot, "https://api.telegram.org");
  assert.deepEqual(config.channels, ["@my_channel"]);
  assert.equal(config.subscriptionTtl, 600);
  assert.equal(config.subscriptionNegativeTtl, 60);
  assert.equal(config.redis, undefined);
  assert.equal(config.kvPath, "data/bot.kv");
  assert.equal(config.webhook, undefined);
  assert.equal(config.log.level, "info");
  assert.equal(config.shutdownTimeoutMs, 25_000);
  assert.equal(config.openai.assistant.kind, "conversations");
  assert.deepEqual(config.secrets.sort(), [KEY, TOKEN].sort());
});

Deno.test("config: each required variable is named when missing", () => {
  for (const name of Object.keys(base)) {
    const env: Record<string, string> = { ...base };
    delete env[name];
    assert.equal(configError(env).variable, name);
    env[name] = "   ";
    assert.equal(configError(env).variable, name, "blank counts as missing");
  }
});

Deno.test("config: a malformed token is refused without printing it", () => {
  const error = configError({ ...base, TELEGRAM_BOT_TOKEN: "not-a-token-but-secret" });
  assert.equal(error.variable, "TELEGRAM_BOT_TOKEN");
  assert.ok(!error.message.includes("not-a-token-but-secret"));
});

Deno.test("config: channels, one or several, @name or numeric", () => {
  assert.deepEqual(parseChannels("@one_chan, -1001234567890 ,@two_chan"), [
    "@one_chan",
    -1001234567890,
    "@two_chan",
  ]);
  for (const bad of ["one_chan", "@ab", "https://t.me/x", "12345"]) {
    assert.throws(() => parseChannels(bad), ConfigError, bad);
  }
});

Deno.test("config: numbers are range-checked and named", () => {
  assert.equal(
    configError({ ...base, SUBSCRIPTION_CACHE_TTL: "ten" }).variable,
    "SUBSCRIPTION_CACHE_TTL",
  );
  assert.equal(configError({ ...base, REDIS_PORT: "70000" }).variable, "REDIS_PORT");
  assert.equal(configError({ ...base, SHUTDOWN_TIMEOUT: "0" }).variable, "SHUTDOWN_TIMEOUT");
  assert.equal(parseConfig({ ...base, SUBSCRIPTION_CACHE_TTL: "30" }).subscriptionTtl, 30);
});

Deno.test("config: Redis from a URL or from host/port/db/password; password is a secret", () => {
  const fromUrl = parseConfig({ ...base, REDIS_URL: "redis://:p%40ss@redis.local:6380/2" });
  assert.equal(fromUrl.redis?.url, "redis://:p%40ss@redis.local:6380/2");
  assert.ok(fromUrl.secrets.includes("p@ss"));
  const parts = parseConfig({
    ...base,
    REDIS_HOST: "cache",
    REDIS_DB: "3",
    REDIS_PASSWORD: "pw123",
  });
  assert.deepEqual(parts.redis, { host: "cache", port: 6379, db: 3, password: "pw123" });
  assert.ok(parts.secrets.includes("pw123"));
  const error = configError({ ...base, REDIS_URL: "http://:hunter2@x" });
  assert.equal(error.variable, "REDIS_URL");
  assert.ok(!error.message.includes("hunter2"));
});

Deno.test("config: credentials in TELEGRAM_API_ROOT, OPENAI_BASE_URL and REDIS_URL are secrets", () => {
  const config = parseConfig({
    ...base,
    TELEGRAM_API_ROOT: "https://bot-user:tg%2Fpass@bot-api.example.com",
    OPENAI_BASE_URL: "https://sk-proxy-token@llm.example.com/v1",
    REDIS_URL: "redis://default:r3dis@cache.local:6379",
  });
  for (const secret of ["tg%2Fpass", "tg/pass", "sk-proxy-token", "r3dis"]) {
    assert.ok(config.secrets.includes(secret), secret);
  }
  // A user name beside a password is not a secret (Redis's "default" would hide a word).
  assert.ok(!config.secrets.includes("default"));
  assert.ok(!config.secrets.includes("bot-user"));
  assert.equal(new Set(config.secrets).size, config.secrets.length, "no duplicates");
  const error = configError({ ...base, TELEGRAM_API_ROOT: "https://u:pa ss@[bad" });
  assert.equal(error.variable, "TELEGRAM_API_ROOT");
  assert.ok(!error.message.includes("pa ss"), error.message);
});

Deno.test("config: webhook mode needs https and a valid secret", () => {
  const config = parseConfig({
    ...base,
    WEBHOOK_URL: "https://bot.example.com/tg/hook",
    WEBHOOK_SECRET: "s3cret_value-1",
    PORT: "8443",
  });
  assert.deepEqual(config.webhook, {
    url: "https://bot.example.com/tg/hook",
    path: "/tg/hook",
    secret: "s3cret_value-1",
    port: 8443,
  });
  assert.ok(config.secrets.includes("s3cret_value-1"));
  assert.equal(
    configError({ ...base, WEBHOOK_URL: "https://x.example.com/" }).variable,
    "WEBHOOK_SECRET",
  );
  assert.equal(
    configError({ ...base, WEBHOOK_URL: "https://x.example.com/", WEBHOOK_SECRET: "bad secret!" })
      .variable,
    "WEBHOOK_SECRET",
  );
  assert.equal(
    configError({ ...base, WEBHOOK_URL: "http://x.example.com/", WEBHOOK_SECRET: "ok" }).variable,
    "WEBHOOK_URL",
  );
});

Deno.test("config: METRICS_TOKEN is validated and secret; METRICS_PORT is not the webhook's port", () => {
  const hook = {
    ...base,
    WEBHOOK_URL: "https://bot.example.com/tg/hook",
    WEBHOOK_SECRET: "s3cret_value-1",
    PORT: "8443",
  };
  assert.equal(parseConfig(base).metricsToken, undefined);
  const token = "0123456789abcdef0123";
  const config = parseConfig({ ...hook, METRICS_TOKEN: token, METRICS_PORT: "9464" });
  assert.equal(config.metricsToken, token);
  assert.equal(config.metricsPort, 9464);
  assert.ok(config.secrets.includes(token));
  for (const bad of ["short", "has space in it 0123456789", "x".repeat(257)]) {
    const error = configError({ ...base, METRICS_TOKEN: bad });
    assert.equal(error.variable, "METRICS_TOKEN");
    assert.ok(!error.message.includes(bad), "the token is not printed");
  }
  const same = configError({ ...hook, METRICS_PORT: "8443" });
  assert.equal(same.variable, "METRICS_PORT");
  assert.match(same.message, /METRICS_TOKEN/);
  assert.equal(parseConfig({ ...base, PORT: "9464", METRICS_PORT: "9464" }).metricsPort, 9464);
  const deploy = configError({
    ...hook,
    PORT: "",
    DENO_DEPLOYMENT_ID: "abc",
    KV_PATH: "",
    METRICS_PORT: "9464",
  });
  assert.equal(deploy.variable, "METRICS_PORT");
});

Deno.test("config: stall timeouts in seconds, 0 = off", () => {
  const defaults = parseConfig(base).openai;
  assert.equal(defaults.firstTokenTimeoutMs, 30_000);
  assert.equal(defaults.idleTimeoutMs, 60_000);
  const set = parseConfig({ ...base, OPENAI_FIRST_TOKEN_TIMEOUT: "5", OPENAI_IDLE_TIMEOUT: "0" });
  assert.equal(set.openai.firstTokenTimeoutMs, 5_000);
  assert.equal(set.openai.idleTimeoutMs, 0);
  for (const name of ["OPENAI_FIRST_TOKEN_TIMEOUT", "OPENAI_IDLE_TIMEOUT"]) {
    for (const bad of ["-1", "1.5", "30s", "3601"]) {
      const error = configError({ ...base, [name]: bad });
      assert.equal(error.variable, name);
      assert.match(error.message, /whole number from 0 to 3600/);
    }
  }
});

Deno.test("config: an asst_ id against OpenAI itself says what to set instead", () => {
  const error = configError({ ...base, ASSISTANT_ID: "asst_abc123" });
  assert.equal(error.variable, "ASSISTANT_ID");
  assert.match(error.message, /shut the Assistants API down.*OPENAI_MODEL/);
  const legacy = parseConfig({
    ...base,
    OPENAI_ASSISTANT_ID: "asst_abc123",
    OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
  });
  assert.deepEqual(legacy.openai.assistant, { kind: "assistants", assistantId: "asst_abc123" });
  assert.equal(
    configError({ ...base, OPENAI_ASSISTANT_ID: "abc" }).variable,
    "OPENAI_ASSISTANT_ID",
  );
});

Deno.test("config: model and instructions for the Responses backend", () => {
  const config = parseConfig({
    ...base,
    OPENAI_MODEL: "gpt-x",
    OPENAI_INSTRUCTIONS: "Be brief.\\nAlways.",
  });
  assert.deepEqual(config.openai.assistant, {
    kind: "conversations",
    model: "gpt-x",
    instructions: "Be brief.\nAlways.",
    maxOutputTokens: undefined,
    compactTokens: 100_000,
    history: { maxTokens: 16_000, ttlSeconds: 30 * 86_400 },
  });
});

Deno.test("config: OPENAI_API picks the backend; an unknown value is refused in one line", () => {
  for (const api of ["conversations", "responses", "chat"]) {
    assert.equal(parseConfig({ ...base, OPENAI_API: api }).openai.assistant.kind, api);
  }
  assert.equal(parseConfig({ ...base, OPENAI_API: "Chat" }).openai.assistant.kind, "chat");
  const error = configError({ ...base, OPENAI_API: "completions" });
  assert.equal(error.variable, "OPENAI_API");
  assert.equal(
    error.message,
    'OPENAI_API: must be conversations (default), responses or chat, got "completions"',
  );
  assert.ok(!error.message.includes("\n"));
  const both = configError({
    ...base,
    OPENAI_API: "chat",
    OPENAI_ASSISTANT_ID: "asst_abc123",
    OPENAI_BASE_URL: "http://127.0.0.1:9999/v1",
  });
  assert.equal(both.variable, "OPENAI_API");
  assert.match(both.message, /cannot be combined with OPENAI_ASSISTANT_ID/);
});

Deno.test("config: context, output and history bounds", () => {
  const config = parseConfig({
    ...base,
    OPENAI_API: "chat",
    CONTEXT_COMPACT_TOKENS: "0",
    MAX_OUTPUT_TOKENS: "2000",
    HISTORY_MAX_TOKENS: "500",
    HISTORY_TTL_DAYS: "7",
  });
  const assistant = config.openai.assistant;
  assert.ok(assistant.kind !== "assistants");
  assert.equal(assistant.compactTokens, undefined, "0 turns compaction off");
  assert.equal(assistant.maxOutputTokens, 2000);
  assert.deepEqual(assistant.history, { maxTokens: 500, ttlSeconds: 7 * 86_400 });
  assert.equal(configError({ ...base, MAX_OUTPUT_TOKENS: "8" }).variable, "MAX_OUTPUT_TOKENS");
  assert.equal(configError({ ...base, HISTORY_TTL_DAYS: "0" }).variable, "HISTORY_TTL_DAYS");
  assert.equal(configError({ ...base, HISTORY_MAX_TOKENS: "lots" }).variable, "HISTORY_MAX_TOKENS");
  assert.equal(
    configError({ ...base, CONTEXT_COMPACT_TOKENS: "-1" }).variable,
    "CONTEXT_COMPACT_TOKENS",
  );
});

Deno.test("config: SAFETY_ID_SALT is a secret", () => {
  const config = parseConfig({ ...base, SAFETY_ID_SALT: "pepper-for-hashes" });
  assert.equal(config.openai.safetyIdSalt, "pepper-for-hashes");
  assert.ok(config.secrets.includes("pepper-for-hashes"));
  assert.equal(parseConfig(base).openai.safetyIdSalt, undefined);
});

Deno.test("config: admin ids and log level", () => {
  const config = parseConfig({ ...base, ADMIN_USER_IDS: "1, 22,333", LOG_LEVEL: "WARN" });
  assert.deepEqual(config.adminIds, [1, 22, 333]);
  assert.equal(config.log.level, "warning");
  assert.equal(configError({ ...base, ADMIN_USER_IDS: "1,bob" }).variable, "ADMIN_USER_IDS");
  assert.equal(configError({ ...base, LOG_LEVEL: "loud" }).variable, "LOG_LEVEL");
});

Deno.test("config: the log file rotates at LOG_FILE_MAX_BYTES keeping LOG_FILE_COUNT files", () => {
  assert.equal(parseConfig(base).log.file, undefined);
  assert.deepEqual(parseConfig({ ...base, LOG_FILE: "data/bot.log" }).log.file, {
    path: "data/bot.log",
    maxBytes: 10 * 1024 * 1024,
    count: 5,
  });
  assert.deepEqual(
    parseConfig({
      ...base,
      LOG_FILE: "data/bot.log",
      LOG_FILE_MAX_BYTES: "65536",
      LOG_FILE_COUNT: "2",
    }).log.file,
    { path: "data/bot.log", maxBytes: 65536, count: 2 },
  );
  for (
    const [name, value] of [
      ["LOG_FILE_MAX_BYTES", "10M"],
      ["LOG_FILE_MAX_BYTES", "100"],
      ["LOG_FILE_COUNT", "0"],
      ["LOG_FILE_COUNT", "-1"],
    ]
  ) {
    const error = configError({ ...base, LOG_FILE: "data/bot.log", [name]: value });
    assert.equal(error.variable, name);
    assert.doesNotMatch(error.message, /\n/, "one line");
  }
});

Deno.test(".env parsing: comments, quotes, export, inline comments", () => {
  const vars = parseDotEnv(
    [
      "# a comment",
      "export A=1",
      "B = two words # note",
      'C="line\\nbreak # kept"',
      "D='literal \\n'",
      "not a line",
      "E=",
    ].join("\n"),
  );
  assert.deepEqual(vars, {
    A: "1",
    B: "two words",
    C: "line\nbreak # kept",
    D: "literal \\n",
    E: "",
  });
});

Deno.test("config: limits, channel mode and metrics port", () => {
  const config = parseConfig(base);
  assert.deepEqual(config.limits, {
    messagesPerMinute: undefined,
    answersPerDay: undefined,
    tokensPerDay: undefined,
    globalTokensPerDay: undefined,
    audioSecondsPerDay: undefined,
    maxMessageChars: 4096,
    resetHourUtc: 0,
    maxFileMb: 20,
  });
  assert.equal(config.channelMode, "all");
  assert.equal(config.metricsPort, undefined);
  const set = parseConfig({
    ...base,
    LIMIT_MESSAGES_PER_MINUTE: "5",
    LIMIT_ANSWERS_PER_DAY: "50",
    LIMIT_TOKENS_PER_DAY: "100000",
    LIMIT_GLOBAL_TOKENS_PER_DAY: "5000000",
    LIMIT_AUDIO_SECONDS_PER_DAY: "600",
    MAX_MESSAGE_CHARS: "4000",
    MAX_FILE_MB: "10",
    LIMITS_RESET_HOUR_UTC: "3",
    CHANNEL_MODE: "ANY",
    METRICS_PORT: "9464",
  });
  assert.deepEqual(set.limits, {
    messagesPerMinute: 5,
    answersPerDay: 50,
    tokensPerDay: 100000,
    globalTokensPerDay: 5000000,
    audioSecondsPerDay: 600,
    maxMessageChars: 4000,
    resetHourUtc: 3,
    maxFileMb: 10,
  });
  assert.equal(set.channelMode, "any");
  assert.equal(set.metricsPort, 9464);
  assert.equal(
    configError({ ...base, LIMIT_ANSWERS_PER_DAY: "0" }).variable,
    "LIMIT_ANSWERS_PER_DAY",
  );
  assert.equal(
    configError({ ...base, LIMITS_RESET_HOUR_UTC: "24" }).variable,
    "LIMITS_RESET_HOUR_UTC",
  );
  assert.equal(configError({ ...base, CHANNEL_MODE: "some" }).variable, "CHANNEL_MODE");
});

Deno.test("config: MAX_MESSAGE_CHARS defaults to the longest text a Telegram user can send", async () => {
  assert.equal(parseConfig(base).limits.maxMessageChars, 4096);
  const telegram = await FakeTelegram.start();
  try {
    const user = { id: 4096, first_name: "Long" };
    telegram.sendText(user, "x".repeat(4096));
    assert.throws(() => telegram.sendText(user, "x".repeat(4097)), /at most 4096/);
  } finally {
    await telegram.close();
  }
});

Deno.test("config: media settings", () => {
  const config = parseConfig(base);
  assert.equal(config.openai.transcribeModel, "gpt-4o-mini-transcribe");
  assert.equal(
    parseConfig({ ...base, OPENAI_TRANSCRIBE_MODEL: "whisper-1" }).openai.transcribeModel,
    "whisper-1",
  );
  // api.telegram.org serves bots 20 MB at most: more needs a local Bot API server.
  assert.throws(
    () => parseConfig({ ...base, MAX_FILE_MB: "50" }),
    (e: Error) => e instanceof ConfigError && /MAX_FILE_MB: .*local Bot API server/.test(e.message),
  );
  const local = parseConfig({
    ...base,
    MAX_FILE_MB: "50",
    TELEGRAM_API_ROOT: "http://127.0.0.1:8081",
  });
  assert.equal(local.limits.maxFileMb, 50);
  assert.throws(
    () => parseConfig({ ...base, LIMIT_AUDIO_SECONDS_PER_DAY: "-1" }),
    /LIMIT_AUDIO_SECONDS_PER_DAY/,
  );
});
