/**
 * Usage limits: the operator's cost control. All optional except the message length:
 * messages per minute per user (flood), answers per day per user, tokens per day per
 * user (as OpenAI reports them), seconds of voice and audio per day per user (billed
 * per minute of transcription), and a daily token budget for the whole bot. Files
 * and audio seconds are counted for /usage and /stats whether or not a limit is set.
 *
 * Counters live in the store (shared by every instance) and are exact under
 * concurrency: answers and messages are taken as tickets (one atomic `increment`,
 * checked after it is taken); an answer that is refused or fails gives its ticket
 * back. Tokens are added with `add`, which never contends (the global counter is
 * written by every answer). Tokens are only known after an
 * answer, so a token limit refuses the next message once the total has reached it:
 * one answer in flight can overshoot by its own size.
 *
 * Audio seconds are known before transcribing (the update gives each note's duration),
 * so a voice note that would pass the day's audio limit is refused before it is
 * downloaded; the seconds are added once it was transcribed.
 *
 * Days end at `resetHourUtc` o'clock UTC (default midnight). Admins are exempt.
 * Keys: `usage:…` and `flood:…` (`store/keys.ts`).
 */
import type { Store } from "./store/store.ts";
import { keys as storeKeys, ttl } from "./store/keys.ts";

export interface LimitsConfig {
  messagesPerMinute?: number;
  answersPerDay?: number;
  tokensPerDay?: number;
  globalTokensPerDay?: number;
  /** Seconds of voice notes, audio and video notes per user per day (`LIMIT_AUDIO_SECONDS_PER_DAY`). */
  audioSecondsPerDay?: number;
  /** Longest message accepted, in characters. */
  maxMessageChars: number;
  /** Largest file taken, in MB (`MAX_FILE_MB`); checked by the media step (`media/classify.ts`). */
  maxFileMb: number;
  /** Hour (UTC) at which daily counters reset. */
  resetHourUtc: number;
}

/** Which limit refused a message, its value, and when it resets. */
export interface Refusal {
  limit: "length" | "flood" | "answers" | "tokens" | "global" | "audio";
  max: number;
  resetsAt?: Date;
  /** `audio`: the seconds already used today. */
  used?: number;
}

/** A user's counts against the limits, for /usage. */
export interface UsageReport {
  answersToday: number;
  tokensToday: number;
  audioSecondsToday: number;
  filesToday: number;
  resetsAt: Date;
  limits: LimitsConfig;
}

export interface Usage {
  /**
   * Decides whether a message may go to the assistant, counting it when it may. A
   * message that is let through holds one answer of the daily count until
   * {@link Usage.finish} says whether it was answered. `audioSeconds`: the length of
   * the voice or audio it carries (checked against the daily audio limit).
   */
  admit(userId: number, text: string, audioSeconds?: number): Promise<Refusal | undefined>;
  /**
   * Records an admitted message's outcome: its tokens, the audio seconds transcribed
   * and the files taken, or gives the answer back.
   */
  finish(userId: number, outcome: Outcome): Promise<void>;
  report(userId: number): Promise<UsageReport>;
}

/** What one admitted message used. */
export interface Outcome {
  answered: boolean;
  tokens?: number;
  audioSeconds?: number;
  files?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** The day number and the moment it ends, for days that start at `hour` UTC. */
export function dayOf(now: number, hour: number): { day: number; endsAt: Date } {
  const shifted = now - hour * 3_600_000;
  const day = Math.floor(shifted / DAY_MS);
  return { day, endsAt: new Date((day + 1) * DAY_MS + hour * 3_600_000) };
}

export interface UsageOptions {
  store: Store;
  limits: LimitsConfig;
  adminIds: number[];
  now?: () => number;
}

/** Creates the usage counter and gate. */
export function createUsage(options: UsageOptions): Usage {
  const { store, limits } = options;
  const now = options.now ?? Date.now;
  const admins = new Set(options.adminIds);
  // Counters outlive their day by a little, so a late read still sees them.
  const dayTtl = (endsAt: Date) => Math.ceil((endsAt.getTime() - now()) / 1000) + 3600;

  const keys = (userId: number) => {
    const { day, endsAt } = dayOf(now(), limits.resetHourUtc);
    return {
      endsAt,
      answers: storeKeys.usage(day, userId, "answers"),
      tokens: storeKeys.usage(day, userId, "tokens"),
      audio: storeKeys.usage(day, userId, "audio_seconds"),
      files: storeKeys.usage(day, userId, "files"),
      global: storeKeys.usage(day, "all", "tokens"),
    };
  };
  const read = (key: string) => store.counter(key);

  async function admit(
    userId: number,
    text: string,
    audioSeconds = 0,
  ): Promise<Refusal | undefined> {
    if ([...text].length > limits.maxMessageChars) {
      return { limit: "length", max: limits.maxMessageChars };
    }
    // Admins are counted like everyone (for /usage and /stats) but never refused.
    const limited = !admins.has(userId);
    const k = keys(userId);
    if (limited && limits.messagesPerMinute) {
      const minute = Math.floor(now() / 60_000);
      const count = await store.increment(storeKeys.flood(minute, userId), 1, ttl.flood);
      if (count > limits.messagesPerMinute) {
        return {
          limit: "flood",
          max: limits.messagesPerMinute,
          resetsAt: new Date((minute + 1) * 60_000),
        };
      }
    }
    if (limited && limits.globalTokensPerDay && await read(k.global) >= limits.globalTokensPerDay) {
      return { limit: "global", max: limits.globalTokensPerDay, resetsAt: k.endsAt };
    }
    if (limited && limits.tokensPerDay && await read(k.tokens) >= limits.tokensPerDay) {
      return { limit: "tokens", max: limits.tokensPerDay, resetsAt: k.endsAt };
    }
    if (limited && limits.audioSecondsPerDay && audioSeconds > 0) {
      const used = await read(k.audio);
      if (used + audioSeconds > limits.audioSecondsPerDay) {
        return { limit: "audio", max: limits.audioSecondsPerDay, resetsAt: k.endsAt, used };
      }
    }
    const answers = await store.increment(k.answers, 1, dayTtl(k.endsAt));
    if (limited && limits.answersPerDay && answers > limits.answersPerDay) {
      await store.increment(k.answers, -1);
      return { limit: "answers", max: limits.answersPerDay, resetsAt: k.endsAt };
    }
    return undefined;
  }

  async function finish(userId: number, outcome: Outcome): Promise<void> {
    const k = keys(userId);
    const ttl = dayTtl(k.endsAt);
    if (!outcome.answered) await store.increment(k.answers, -1);
    if (outcome.audioSeconds) await store.add(k.audio, outcome.audioSeconds, ttl);
    if (outcome.files) await store.add(k.files, outcome.files, ttl);
    if (outcome.tokens) {
      // Counted without reading back: the global key is written by every answer.
      await store.add(k.tokens, outcome.tokens, ttl);
      await store.add(k.global, outcome.tokens, ttl);
    }
  }

  async function report(userId: number): Promise<UsageReport> {
    const k = keys(userId);
    return {
      answersToday: Number(await store.get(k.answers) ?? 0) || 0,
      tokensToday: await read(k.tokens),
      audioSecondsToday: await read(k.audio),
      filesToday: await read(k.files),
      resetsAt: k.endsAt,
      limits,
    };
  }

  return { admit, finish, report };
}
