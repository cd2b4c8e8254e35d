/**
 * Daily statistics for /stats, counted in the store so every instance adds to the
 * same numbers: users seen today and in total, answers, tokens in and out,
 * subscription cache hits and misses, OpenAI and Telegram errors. Days follow the
 * limits' reset hour. Counting is best effort: a store failure loses a count, never
 * an answer. Keys: `stats:{day}:{name}`, `stats:users_total`, `seen:{day}:{user}`,
 * `seen:{user}`.
 */
import type { Store } from "./store/store.ts";
import { dayOf } from "./limits.ts";

export type StatName =
  | "answers"
  | "tokens_in"
  | "tokens_out"
  | "cache_hit"
  | "cache_miss"
  | "errors_openai"
  | "errors_telegram";

const NAMES: StatName[] = [
  "answers",
  "tokens_in",
  "tokens_out",
  "cache_hit",
  "cache_miss",
  "errors_openai",
  "errors_telegram",
];

export type StatsReport = Record<StatName | "users_today" | "users_total", number>;

export interface Stats {
  /** Notes that a user wrote to the bot (counted once per day and once ever). */
  seen(userId: number): Promise<void>;
  count(name: StatName, by?: number): Promise<void>;
  today(): Promise<StatsReport>;
}

const TEN_YEARS = 10 * 365 * 24 * 3600;

export interface StatsOptions {
  store: Store;
  resetHourUtc: number;
  now?: () => number;
}

/** Creates the statistics counter. */
export function createStats(options: StatsOptions): Stats {
  const { store } = options;
  const now = options.now ?? Date.now;
  const day = () => {
    const { day, endsAt } = dayOf(now(), options.resetHourUtc);
    return { day, ttl: Math.ceil((endsAt.getTime() - now()) / 1000) + 3600 };
  };
  const quietly = (p: Promise<unknown>) => p.then(() => {}, () => {});

  // Users this process has already counted today: their next messages cost no store call.
  let seenDay = -1;
  const seenToday = new Set<number>();

  return {
    seen: (userId) =>
      quietly((async () => {
        const { day: d, ttl } = day();
        if (d !== seenDay) {
          seenDay = d;
          seenToday.clear();
        }
        if (seenToday.has(userId)) return;
        seenToday.add(userId);
        if (await store.setIfAbsent(`seen:${d}:${userId}`, "1", ttl)) {
          await store.add(`stats:${d}:users_today`, 1, ttl);
        }
        if (await store.setIfAbsent(`seen:${userId}`, "1", TEN_YEARS)) {
          await store.add("stats:users_total", 1);
        }
      })()),
    count: (name, by = 1) => {
      const { day: d, ttl } = day();
      return quietly(store.add(`stats:${d}:${name}`, by, ttl));
    },
    async today() {
      const { day: d } = day();
      const read = (key: string) => store.counter(key).catch(() => 0);
      const report = {
        users_today: await read(`stats:${d}:users_today`),
        users_total: await read("stats:users_total"),
      } as StatsReport;
      for (const name of NAMES) report[name] = await read(`stats:${d}:${name}`);
      return report;
    },
  };
}
