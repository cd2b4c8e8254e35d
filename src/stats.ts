/**
 * Daily statistics for /stats, counted in the store so every instance adds to the
 * same numbers: users seen today and in total, answers, tokens in and out, seconds of
 * voice and audio transcribed, files taken (voice notes, photos, documents),
 * subscription cache hits and misses, OpenAI and Telegram errors. Days follow the
 * limits' reset hour. Counting is best effort: a store failure loses a count, never
 * an answer. Keys: `stats:…` and `seen:…` (`store/keys.ts`).
 */
import type { Store } from "./store/store.ts";
import { dayOf } from "./limits.ts";
import { keys, ttl as lifetimes } from "./store/keys.ts";

export type StatName =
  | "answers"
  | "tokens_in"
  | "tokens_out"
  | "audio_seconds"
  | "files"
  | "cache_hit"
  | "cache_miss"
  | "errors_openai"
  | "errors_telegram";

const NAMES: StatName[] = [
  "answers",
  "tokens_in",
  "tokens_out",
  "audio_seconds",
  "files",
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
        if (await store.setIfAbsent(keys.seen(userId, d), "1", ttl)) {
          await store.add(keys.stat(d, "users_today"), 1, ttl);
        }
        if (await store.setIfAbsent(keys.seen(userId), "1", lifetimes.seenEver)) {
          await store.add(keys.usersTotal, 1);
        }
      })()),
    count: (name, by = 1) => {
      const { day: d, ttl } = day();
      return quietly(store.add(keys.stat(d, name), by, ttl));
    },
    async today() {
      const { day: d } = day();
      const read = (key: string) => store.counter(key).catch(() => 0);
      const report = {
        users_today: await read(keys.stat(d, "users_today")),
        users_total: await read(keys.usersTotal),
      } as StatsReport;
      for (const name of NAMES) report[name] = await read(keys.stat(d, name));
      return report;
    },
  };
}
