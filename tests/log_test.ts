import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { redactingFormatter } from "../src/log.ts";

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
