/**
 * The fakes as the benchmark runs them: fake Telegram with a set round trip, fake
 * OpenAI with a set time to first token and token rate, both tapped for send times
 * (`tap.ts`), one channel the simulated users are subscribed to, and answers that
 * carry per-message markers so every Bot API call can be matched to the message it
 * answers however the bot delivers it (one message, drafts, edits, rich messages).
 */
import { FakeTelegram, type FakeUser } from "../tests/fakes/telegram.ts";
import { FakeOpenAI } from "../tests/fakes/openai.ts";
import { type Exchange, tapServer } from "./tap.ts";

/** The channel subscribers must be in (as in tests/helpers/stack.ts). */
export const CHANNEL = { id: -1001234567890, username: "test_channel", title: "Test Channel" };

/** Latencies and answer size of the fakes. */
export interface FakeSettings {
  /** Fake Telegram's delay before every answer, ms. */
  telegramLatencyMs: number;
  /** Fake OpenAI's delay before the first text delta, ms. */
  timeToFirstTokenMs: number;
  /** Fake OpenAI's text deltas per second after the first. */
  tokensPerSecond: number;
  /** Text deltas (words) per answer, markers included. */
  answerTokens: number;
}

export interface BenchFakes {
  telegram: FakeTelegram;
  openai: FakeOpenAI;
  /** Every HTTP exchange at fake OpenAI; streams carry first-delta and end times. */
  openaiExchanges: Exchange[];
  /**
   * Resolves with the arrival time of the first getUpdates that reaches fake Telegram
   * at or after `since` (ms since the epoch): the bot's first poll after a start.
   */
  pollAfter(since: number): Promise<number>;
  /** Makes `userId` a member of the channel and returns them as a Telegram user. */
  subscribe(userId: number): FakeUser;
  close(): Promise<void>;
}

const pad = (id: number) => String(id).padStart(7, "0");

/** The text a simulated user sends for message `id`. */
export const questionText = (id: number) => `uq${pad(id)} could you explain this briefly?`;
/** Marker that starts answer `id` (its first token). */
export const startMarker = (id: number) => `bq${pad(id)}s`;
/** Marker that ends answer `id` (its last token). */
export const endMarker = (id: number) => `bq${pad(id)}e`;
/** Finds answer markers in any text: group 1 is the id, group 2 "s" or "e". */
export const MARKER_RE = /bq(\d{7})([se])/g;

// A paragraph with the inline Markdown answers usually have, so formatting is exercised.
const FILLER = [
  "Here",
  "is",
  "a",
  "**short**",
  "answer",
  "with",
  "`inline`",
  "code,",
  "a",
  "*little*",
  "emphasis",
  "and",
  "plain",
  "words",
  "that",
  "carry",
  "the",
  "idea.",
];

/**
 * Answer `id` in Markdown made of exactly `tokens` whitespace-separated tokens (at least
 * 2; a list bullet counts as one, as the fake streams it as one delta): the start
 * marker, a paragraph, list items in the second half, and the end marker last.
 */
export function answerText(id: number, tokens: number): string {
  const body = Math.max(0, tokens - 2);
  const parts: string[] = [startMarker(id)];
  let word = 0;
  for (let i = 0; i < body; i++) {
    // The second half goes into list items of about 6 words, like a typical answer.
    if (i >= body / 2 && i % 6 === 0 && i < body - 1) parts.push("\n-");
    else parts.push(` ${FILLER[word++ % FILLER.length]}`);
  }
  const list = parts.some((p) => p === "\n-");
  parts.push(`${list ? "\n\n" : " "}${endMarker(id)}`);
  return parts.join("");
}

/** Starts both fakes with the settings and declares the channel. */
export async function startBenchFakes(settings: FakeSettings): Promise<BenchFakes> {
  // Arrival times of getUpdates, and who waits for the next one.
  const polls: number[] = [];
  const pollWaiters = new Set<() => void>();
  const tg = await tapServer(
    () => FakeTelegram.start({ latencyMs: settings.telegramLatencyMs }),
    undefined,
    (path, at) => {
      if (!path.endsWith("/getUpdates")) return;
      polls.push(at);
      for (const wake of pollWaiters) wake();
    },
  );
  const ai = await tapServer(
    () =>
      FakeOpenAI.start({
        timeToFirstTokenMs: settings.timeToFirstTokenMs,
        tokensPerSecond: settings.tokensPerSecond,
      }),
    "response.output_text.delta",
  );
  const telegram = tg.value;
  const openai = ai.value;
  telegram.addChannel({ ...CHANNEL, botIsAdmin: true });
  openai.reply = (input) => {
    const id = /uq(\d{7})/.exec(input)?.[1];
    return id === undefined ? `Echo: ${input}` : answerText(Number(id), settings.answerTokens);
  };
  return {
    telegram,
    openai,
    openaiExchanges: ai.exchanges,
    pollAfter(since) {
      return new Promise((resolve) => {
        const check = () => {
          const at = polls.find((t) => t >= since);
          if (at === undefined) return;
          pollWaiters.delete(check);
          resolve(at);
        };
        pollWaiters.add(check);
        check();
      });
    },
    subscribe(userId) {
      telegram.setMember(CHANNEL.id, userId, "member");
      telegram.setMember(`@${CHANNEL.username}`, userId, "member");
      return { id: userId, first_name: `User${userId}`, language_code: "en" };
    },
    async close() {
      await telegram.close();
      await openai.close();
    },
  };
}
