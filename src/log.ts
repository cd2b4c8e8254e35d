/**
 * LogTape set-up: console (and an optional rotating file), with secrets redacted from
 * every line. grammY puts the bot token in request URLs, and fetch errors quote those
 * URLs, so redaction happens in the formatter, after the message is rendered: whatever
 * a library puts in an error, the token, the API key and passwords never reach a sink.
 *
 * The file (`LOG_FILE`) rotates by size with LogTape's rotating file sink: past
 * `LOG_FILE_MAX_BYTES` it is renamed `<file>.1` (the older ones move up to
 * `<file>.<LOG_FILE_COUNT>`, the oldest is dropped) and a new file starts. Lines are
 * written in the background at least once a second, so a crash loses at most that.
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
import { redactByPattern, type RedactionPattern } from "@logtape/redaction";
import { ConfigError } from "./config.ts";

/** The rotating log file. */
export interface LogFileOptions {
  path: string;
  /** Past this size the file is rotated. */
  maxBytes: number;
  /** Rotated files kept besides the current one (`<path>.1` … `<path>.<count>`). */
  count: number;
}

export interface LogOptions {
  level: LogLevel;
  file?: LogFileOptions;
  /** Exact values to hide (token, API key, passwords, webhook secret). */
  secrets: string[];
}

/** How often buffered lines are written to the file at the latest. */
const FILE_FLUSH_MS = 1_000;

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The userinfo of a URL (`scheme://user:password@`): group 1 is the scheme part. The
 * userinfo cannot hold whitespace, quotes, `/ ? # @` (RFC 3986 percent-encodes them),
 * so the match stops at the URL's end.
 */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"'<>`]+@/gi;

/**
 * Patterns that hide the given secrets (every one, whatever its length, longest
 * first, in one pass so a replacement is never matched again), the credentials of any
 * URL (`https://user:pass@host` → `https://[REDACTED]@host`), and anything shaped like
 * a bot token or an API key.
 */
export function secretPatterns(secrets: string[]): RedactionPattern[] {
  const exact = [...new Set(secrets.filter((s) => s.length > 0))]
    .sort((a, b) => b.length - a.length);
  return [
    ...(exact.length > 0
      ? [{ pattern: new RegExp(exact.map(escape).join("|"), "g"), replacement: "[REDACTED]" }]
      : []),
    { pattern: URL_USERINFO, replacement: "$1[REDACTED]@" },
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
 * The rotating file sink. It opens (creates) the file at once; throws
 * {@link ConfigError} for `LOG_FILE` when it cannot. Dispose it (LogTape's `reset`
 * does) to write what is buffered.
 */
export async function logFileSink(
  file: LogFileOptions,
  formatter: TextFormatter,
): Promise<Sink & AsyncDisposable> {
  // Loaded only with LOG_FILE: the file sink brings Node's fs layer, a few MB of memory.
  const { getRotatingFileSink } = await import("@logtape/file");
  try {
    return getRotatingFileSink(file.path, {
      formatter,
      maxSize: file.maxBytes,
      maxFiles: file.count,
      // Rotation is checked per write of the buffer: keep a write well under the size.
      bufferSize: Math.max(1, Math.min(8192, Math.floor(file.maxBytes / 8))),
      flushInterval: FILE_FLUSH_MS,
      // A full buffer is written at once and synced in the background (answers never
      // wait for fsync); a partial one at the latest after FILE_FLUSH_MS.
      nonBlocking: true,
      // The first overload (Disposable) matches before the nonBlocking one.
    }) as unknown as Sink & AsyncDisposable;
  } catch (error) {
    const hint = error instanceof Deno.errors.NotCapable
      ? "the permission set lets the bot write only in data/: put the file there"
      : error instanceof Deno.errors.NotFound
      ? "its directory does not exist: create it"
      : (error as Error).message;
    throw new ConfigError("LOG_FILE", `cannot open "${file.path}": ${hint}`);
  }
}

/**
 * Configures LogTape for the process. Categories: `["bot", …]` for our code; LogTape's
 * own meta logger only warns. Throws {@link ConfigError} when the log file cannot be
 * opened. Call {@link stopLogging} on exit to flush the file sink.
 */
export async function setupLogging(options: LogOptions): Promise<void> {
  const formatter = redactingFormatter(options.secrets);
  const sinks: Record<string, Sink> = { console: getConsoleSink({ formatter }) };
  if (options.file) sinks.file = await logFileSink(options.file, formatter);
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
