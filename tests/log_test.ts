import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { logFileSink, redactingFormatter, setupLogging, stopLogging } from "../src/log.ts";
import { ConfigError } from "../src/config.ts";

const TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789";

function record(message: string, value: unknown): LogRecord {
  return {
    category: ["bot"],
    level: "error",
    message: [message, value, ""],
    rawMessage: `${message}{value}`,
    timestamp: Date.now(),
    properties: { value },
  };
}

Deno.test("log: the token, the key and passwords never reach a line", () => {
  const format = redactingFormatter([TOKEN, "sk-live-abc123456789", "redis-pass"]);
  const error = new Error(
    `request to https://api.telegram.org/bot${TOKEN}/getUpdates failed, reason: ECONNRESET`,
  );
  const line = format(record("Polling failed: ", error));
  assert.ok(!line.includes(TOKEN), line);
  assert.ok(!line.includes(TOKEN.split(":")[1]), line);
  assert.match(line, /\[REDACTED\]/);
  assert.match(line, /ECONNRESET/, "the cause stays readable");

  const other = format(record("Key: ", "Bearer sk-live-abc123456789 and redis://:redis-pass@h"));
  assert.ok(!other.includes("sk-live-abc123456789"), other);
  assert.ok(!other.includes("redis-pass"), other);
});

Deno.test("log: a token-shaped string is hidden even when not configured", () => {
  const format = redactingFormatter([]);
  const line = format(
    record("url ", "https://x/bot987654321:ZZZdefGHIjklMNOpqrSTUvwxYZ0123456789/send"),
  );
  assert.ok(!line.includes("ZZZdefGHIjklMNOpqrSTUvwxYZ0123456789"), line);
});

Deno.test("log: every configured secret is hidden, however short, in one pass", () => {
  const format = redactingFormatter(["abc", "Z", "pw", "abcdef"]);
  const line = format(record("values: ", "abcdef abc pw-Z"));
  assert.doesNotMatch(line, /abc|pw|Z/, line);
  // The longest first: "abcdef" is one [REDACTED], not "[REDACTED]def".
  assert.match(line, /values: \[REDACTED\] \[REDACTED\] \[REDACTED\]-\[REDACTED\]/);
  assert.match(redactingFormatter([""])(record("empty: ", "kept")), /empty: kept/);
});

Deno.test("log: the credentials of any URL are masked, configured or not", () => {
  const format = redactingFormatter([]);
  const cases: [string, string][] = [
    ["https://user:pass@bot-api.example.com/bot1/getMe", "https://[REDACTED]@bot-api.example.com/"],
    ["redis://:s3cr%40t@cache.local:6379/0", "redis://[REDACTED]@cache.local:6379/0"],
    ["rediss://default:pw@redis.example.com", "rediss://[REDACTED]@redis.example.com"],
    ["http://only-a-token@127.0.0.1:8080/v1", "http://[REDACTED]@127.0.0.1:8080/v1"],
    ['{"url":"https://u:p@h.example/x"}', '{"url":"https://[REDACTED]@h.example/x"}'],
  ];
  for (const [input, expected] of cases) {
    const line = format(record("connect ", `${input} failed`));
    assert.ok(line.includes(expected), `${input} → ${line}`);
  }
  for (const plain of ["https://api.openai.com/v1/responses", "mail me: ops@example.com"]) {
    const line = format(record("", plain));
    assert.ok(line.includes(plain), line);
  }
});

Deno.test("log: the file rotates past its size, keeps `count` old files, and is redacted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/bot.log`;
    const maxBytes = 1024;
    const sink = await logFileSink({ path, maxBytes, count: 2 }, redactingFormatter([TOKEN]));
    const files = () =>
      [...Deno.readDirSync(dir)].map((e) => e.name).sort().map((name) => ({
        name,
        text: Deno.readTextFileSync(`${dir}/${name}`),
      }));
    for (let i = 0; i < 20; i++) {
      const line = `line ${String(i).padStart(2, "0")} `;
      // Each line is over the buffer size, so it is written at once (in the background):
      // wait until it is, as lines come one by one in a running bot.
      sink(record(line, `${TOKEN} ${"x".repeat(150)}`));
      for (let wait = 0; !files().some((f) => f.text.includes(line)); wait++) {
        assert.ok(wait < 2000, `${line} was never written`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
    await sink[Symbol.asyncDispose]();
    const kept = files();
    assert.deepEqual(kept.map((f) => f.name), ["bot.log", "bot.log.1", "bot.log.2"]);
    for (const { name, text } of kept) {
      assert.ok(!text.includes(TOKEN), name);
      assert.ok(new TextEncoder().encode(text).length <= maxBytes, `${name} over the size`);
    }
    assert.match(kept[0].text, /line 19 /, "the newest line is in the current file");
    // Oldest first (bot.log.2, bot.log.1, bot.log): consecutive lines up to the newest,
    // the oldest ones dropped.
    const numbers = [kept[2], kept[1], kept[0]].map((f) => f.text).join("")
      .match(/line \d\d/g)!.map((l) => Number(l.slice(5)));
    assert.ok(numbers[0] > 0, "the oldest lines were dropped");
    assert.deepEqual(numbers, numbers.map((_, i) => numbers[0] + i));
    assert.equal(numbers.at(-1), 19);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("log: a log file that cannot be opened is a LOG_FILE configuration error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = { path: `${dir}/missing/bot.log`, maxBytes: 1024, count: 1 };
    const error = await setupLogging({ level: "info", file, secrets: [] }).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.variable, "LOG_FILE");
    assert.match(error.message, /directory does not exist/);
  } finally {
    await stopLogging();
    await Deno.remove(dir, { recursive: true });
  }
});
