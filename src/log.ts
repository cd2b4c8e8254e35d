/**
 * LogTape set-up: console (and an optional file), with secrets redacted from every
 * line. grammY puts the bot token in request URLs, and fetch errors quote those URLs,
 * so redaction happens in the formatter, after the message is rendered: whatever a
 * library puts in an error, the token, the API key and passwords never reach a sink.
 */
import {
  configure,
  getConsoleSink,
  getTextFormatter,
  type LogLevel,
  reset,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import { getFileSink } from "@logtape/file";
import { redactByPattern, type RedactionPattern } from "@logtape/redaction";

export interface LogOptions {
  level: LogLevel;
  file?: string;
  /** Exact values to hide (token, API key, passwords, webhook secret). */
  secrets: string[];
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Patterns that hide the given secrets and anything shaped like a bot token or an API key. */
export function secretPatterns(secrets: string[]): RedactionPattern[] {
  const exact = secrets.filter((s) => s.length >= 4).map((s) => ({
    pattern: new RegExp(escape(s), "g"),
    replacement: "[REDACTED]",
  }));
  return [
    ...exact,
    { pattern: /\d{5,}:[A-Za-z0-9_-]{30,}/g, replacement: "[REDACTED]" },
    { pattern: /\bsk-[A-Za-z0-9_*.-]{8,}/g, replacement: "[REDACTED]" },
  ];
}

/**
 * Renders a property on one line: strings as they are, errors as `Name: message`
 * followed by their causes (no stack: a log line per event), anything else inspected.
 */
export function formatValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (value instanceof Error) {
    let text = `${value.name}: ${value.message}`;
    for (let cause = value.cause, depth = 0; cause && depth < 3; depth++) {
      text += cause instanceof Error
        ? ` (cause: ${cause.name}: ${cause.message})`
        : ` (cause: ${formatValue(cause)})`;
      cause = cause instanceof Error ? cause.cause : undefined;
    }
    return text;
  }
  return Deno.inspect(value, { compact: true, breakLength: Infinity, colors: false });
}

/** A text formatter that renders like LogTape's default and then redacts secrets. */
export function redactingFormatter(secrets: string[]): TextFormatter {
  return redactByPattern(
    getTextFormatter({ timestamp: "date-time-tz", value: formatValue }),
    secretPatterns(secrets),
  );
}

/**
 * Configures LogTape for the process. Categories: `["bot", …]` for our code; LogTape's
 * own meta logger only warns. Call {@link stopLogging} on exit to flush the file sink.
 */
export async function setupLogging(options: LogOptions): Promise<void> {
  const formatter = redactingFormatter(options.secrets);
  const sinks: Record<string, Sink> = { console: getConsoleSink({ formatter }) };
  if (options.file) sinks.file = getFileSink(options.file, { formatter, lazy: true });
  await configure({
    reset: true,
    sinks,
    loggers: [
      { category: ["bot"], lowestLevel: options.level, sinks: Object.keys(sinks) },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["console"] },
    ],
  });
}

/** Flushes and closes the sinks. */
export async function stopLogging(): Promise<void> {
  await reset();
}
