/**
 * Prometheus metrics (prom-client, text format 0.0.4), served at `GET /metrics` by
 * the webhook server and, in polling mode, on `METRICS_PORT` when set. One
 * {@link Metrics} per process, built in the composition root and passed in; no
 * default metrics (they need process permissions the bot does not have).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export interface Metrics {
  readonly registry: Registry;
  /** Answers given, by outcome: `completed`, `incomplete`, `aborted`, `failed`, `refused`. */
  answers: Counter<"outcome">;
  /** Errors by kind: `openai_rate_limited`, `openai_unavailable`, `openai_failed`, `telegram`. */
  errors: Counter<"kind">;
  /** Seconds from the request to OpenAI to the end of the answer. */
  openaiLatency: Histogram;
  /** Seconds from the request to OpenAI to its first text delta. */
  timeToFirstToken: Histogram;
  /** Bot API calls by method, and 429s by method. */
  telegramCalls: Counter<"method">;
  telegram429: Counter<"method">;
  /** Subscription checks answered by the cache (`hit`) or by Telegram (`miss`). */
  subscriptionCache: Counter<"result">;
  /** Seconds an update waited for its user's previous turn. */
  turnWait: Histogram;
  /** Turns being handled now. */
  turnsInFlight: Gauge;
  /** Tokens reported by OpenAI, by direction `in` / `out`. */
  tokens: Counter<"direction">;
  /** The exposition text. */
  render(): Promise<string>;
  readonly contentType: string;
}

const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80];

/** Creates a fresh registry with the bot's metrics. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    answers: new Counter({
      name: "bot_answers_total",
      help: "Answers to user messages, by outcome.",
      labelNames: ["outcome"],
      registers,
    }),
    errors: new Counter({
      name: "bot_errors_total",
      help: "Errors by kind.",
      labelNames: ["kind"],
      registers,
    }),
    openaiLatency: new Histogram({
      name: "bot_openai_latency_seconds",
      help: "Time from the OpenAI request to the end of the answer.",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: "bot_openai_time_to_first_token_seconds",
      help: "Time from the OpenAI request to the first text delta.",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    telegramCalls: new Counter({
      name: "bot_telegram_calls_total",
      help: "Bot API calls, by method.",
      labelNames: ["method"],
      registers,
    }),
    telegram429: new Counter({
      name: "bot_telegram_429_total",
      help: "Bot API calls answered 429 Too Many Requests, by method.",
      labelNames: ["method"],
      registers,
    }),
    subscriptionCache: new Counter({
      name: "bot_subscription_cache_total",
      help: "Subscription checks, by cache result.",
      labelNames: ["result"],
      registers,
    }),
    turnWait: new Histogram({
      name: "bot_turn_wait_seconds",
      help: "Time an update waited for the user's previous turn.",
      buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 15, 30, 60],
      registers,
    }),
    turnsInFlight: new Gauge({
      name: "bot_turns_in_flight",
      help: "Updates being handled now.",
      registers,
    }),
    tokens: new Counter({
      name: "bot_openai_tokens_total",
      help: "Tokens reported by OpenAI, by direction.",
      labelNames: ["direction"],
      registers,
    }),
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
