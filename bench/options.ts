/**
 * Command-line options of `deno task bench`, with the defaults (200 users × 5
 * messages; fake OpenAI 300 ms to first token, 60 tokens/s, realistic answers of 500
 * tokens and short ones of 40; fake Telegram 20 ms) and a `--smoke` preset that takes a
 * few seconds.
 */
import { parseArgs } from "node:util";
import type { AnswerKind } from "./fakes.ts";
import type { RunSettings, StoreKind } from "./scenario.ts";

export interface BenchOptions {
  settings: RunSettings;
  stores: StoreKind[];
  /** The answer kinds to run, realistic first. */
  answers: AnswerKind[];
  /** A git revision to run against the current checkout. */
  compare?: string;
  /** Directory of the JSON results. */
  outDir: string;
  /** Also write `latest.json` (full runs only). */
  writeLatest: boolean;
  smoke: boolean;
}

export const USAGE = `deno task bench [options]

  --users=N            simulated subscribers in the paced phase (200)
  --messages=M         messages per subscriber (5)
  --answers=KIND       realistic, short or both, side by side (both)
  --tokens=N           tokens per realistic answer (500)
  --short-tokens=N     tokens per short answer (40)
  --burst=N            users in each burst with short answers, 0 for none (1000)
  --realistic-burst=N  users in each burst with realistic answers (0)
  --think=MIN-MAX      ms a user reads and types between answer and question (1000-4000)
  --ramp=MS            users start within this time (3000)
  --tg-latency=MS      fake Telegram round trip (20)
  --ttft=MS            fake OpenAI time to first token (300)
  --tps=N              fake OpenAI tokens per second, 0 for no pacing (60)
  --store=kv|redis|both  embedded Deno KV, Redis, or both compared (both)
  --compare=REV        also run git revision REV (temporary worktree) and give ratios
  --startups=N         extra start-ups measured for the start-up median (2)
  --cpu-prof[=DIR]     write a CPU profile of the loaded bot (bench/results/profiles)
  --bot-flags="..."    extra Deno flags for the loaded bot, e.g. "--v8-flags=--max-old-space-size=64"
  --log-level=LEVEL    the bot's LOG_LEVEL (info)
  --api=NAME           the bot's OPENAI_API: conversations, responses or chat (conversations)
  --input=text|voice   users send texts, or short voice notes (download + transcription) (text)
  --seed=N             pacing seed (1)
  --timeout=MS         longest wait for one answer before it counts as failed (60000)
  --idle=MS            idle time after start-up before the idle memory is read (1000)
  --out=DIR            where the JSON goes (bench/results)
  --heap[=DIR]         inspect the loaded bot's memory in the paced phase once the first answers
                       are 3/4 written and min(100, users/2) are in flight: Deno.memoryUsage,
                       live allocations by package, a heap snapshot (bench/results/heap)
  --smoke              5 users × 2 messages, bursts of 10, unpaced streams: a few seconds
`;

/** Parses argv; throws an Error with a readable message on a bad option. */
export function parseOptions(args: string[], resultsDir: string): BenchOptions {
  // A bare `--cpu-prof` means the default directory; parseArgs wants a value.
  const normalized = args.map((a) => a === "--cpu-prof" || a === "--heap" ? `${a}=` : a);
  const { values } = parseArgs({
    args: normalized,
    options: {
      users: { type: "string" },
      messages: { type: "string" },
      burst: { type: "string" },
      think: { type: "string" },
      ramp: { type: "string" },
      "tg-latency": { type: "string" },
      ttft: { type: "string" },
      tps: { type: "string" },
      tokens: { type: "string" },
      "short-tokens": { type: "string" },
      answers: { type: "string" },
      "realistic-burst": { type: "string" },
      heap: { type: "string" },
      store: { type: "string" },
      compare: { type: "string" },
      startups: { type: "string" },
      "cpu-prof": { type: "string" },
      "bot-flags": { type: "string" },
      "log-level": { type: "string" },
      api: { type: "string" },
      input: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
      timeout: { type: "string" },
      idle: { type: "string" },
      smoke: { type: "boolean" },
      help: { type: "boolean" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) throw new UsageRequest();
  const smoke = values.smoke ?? false;
  const int = (name: string, raw: string | undefined, fallback: number, min = 0) => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) {
      throw new Error(`--${name}: "${raw}" is not an integer ≥ ${min}`);
    }
    return n;
  };
  const think = (values.think ?? (smoke ? "50-150" : "1000-4000")).split("-").map(Number);
  if (
    think.length !== 2 || think.some((n) => !Number.isFinite(n) || n < 0) || think[0] > think[1]
  ) {
    throw new Error(`--think: "${values.think}" is not MIN-MAX in ms`);
  }
  const store = values.store ?? "both";
  if (!["kv", "redis", "both"].includes(store)) {
    throw new Error(`--store: "${store}" is not kv, redis or both`);
  }
  const cpuProfDir = values["cpu-prof"] === undefined
    ? undefined
    : (values["cpu-prof"] || `${resultsDir}/profiles/${stamp(new Date())}`);
  const heapDir = values.heap === undefined
    ? undefined
    : (values.heap || `${resultsDir}/heap/${stamp(new Date())}`);
  const answers = values.answers ?? "both";
  if (!["realistic", "short", "both"].includes(answers)) {
    throw new Error(`--answers: "${answers}" is not realistic, short or both`);
  }
  const input = values.input ?? "text";
  if (!["text", "voice"].includes(input)) {
    throw new Error(`--input: "${input}" is not text or voice`);
  }
  const api = values.api ?? "conversations";
  if (!["conversations", "responses", "chat"].includes(api)) {
    throw new Error(`--api: "${api}" is not conversations, responses or chat`);
  }
  const outDir = values.out ?? resultsDir;
  return {
    settings: {
      users: int("users", values.users, smoke ? 5 : 200, 1),
      messagesPerUser: int("messages", values.messages, smoke ? 2 : 5, 1),
      burstUsers: int("burst", values.burst, smoke ? 10 : 1000),
      thinkMs: [think[0], think[1]],
      rampMs: int("ramp", values.ramp, smoke ? 100 : 3000),
      telegramLatencyMs: int("tg-latency", values["tg-latency"], 20),
      timeToFirstTokenMs: int("ttft", values.ttft, smoke ? 50 : 300),
      tokensPerSecond: int("tps", values.tps, smoke ? 0 : 60),
      realisticTokens: int("tokens", values.tokens, 500, 2),
      shortTokens: int("short-tokens", values["short-tokens"], 40, 2),
      realisticBurstUsers: int("realistic-burst", values["realistic-burst"], 0),
      answerTimeoutMs: int("timeout", values.timeout, 60_000, 1),
      startupRuns: int("startups", values.startups, smoke ? 0 : 2),
      warmup: !smoke,
      idleMs: int("idle", values.idle, smoke ? 200 : 1000),
      seed: int("seed", values.seed, 1),
      logLevel: values["log-level"] ?? "info",
      openaiApi: api,
      input: input as "text" | "voice",
      cpuProfDir,
      heapDir,
      botFlags: (values["bot-flags"] ?? "").split(/\s+/).filter(Boolean),
    },
    stores: store === "both" ? ["kv", "redis"] : [store as StoreKind],
    answers: answers === "both" ? ["realistic", "short"] : [answers as AnswerKind],
    compare: values.compare,
    outDir,
    writeLatest: !smoke && values.out === undefined,
    smoke,
  };
}

/** Thrown for `--help`. */
export class UsageRequest extends Error {
  constructor() {
    super("usage");
  }
}

/** `2026-11-20T10-01-02Z`: sortable and safe in file names. */
export function stamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, "Z").replaceAll(":", "-");
}
