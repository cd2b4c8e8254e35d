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
import { oggOpus } from "../tests/helpers/assets.ts";

/** The channel subscribers must be in (as in tests/helpers/stack.ts). */
export const CHANNEL = { id: -1001234567890, username: "test_channel", title: "Test Channel" };

/**
 * The two answers the fake model gives: `realistic` (a few hundred tokens of Markdown
 * with a heading, lists, a code block and a table, in tokens of about four characters,
 * like a real model's) and `short` (the first bench's 40 words of inline Markdown).
 */
export type AnswerKind = "realistic" | "short";

/** Latencies and answer size of the fakes. */
export interface FakeSettings {
  /** Fake Telegram's delay before every answer, ms. */
  telegramLatencyMs: number;
  /** Fake OpenAI's delay before the first text delta, ms. */
  timeToFirstTokenMs: number;
  /** Fake OpenAI's text deltas per second after the first. */
  tokensPerSecond: number;
  /** Which answer the fake model gives. */
  answerKind: AnswerKind;
  /** Text deltas (tokens) per answer, markers included. */
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
/**
 * A short voice note for the bench: a real Ogg Opus header (what the fakes check)
 * followed by the question as bytes, which the fake transcription reads back.
 */
export function voiceNote(question: string): Uint8Array {
  const head = oggOpus();
  const text = new TextEncoder().encode(question);
  const bytes = new Uint8Array(head.length + text.length);
  bytes.set(head);
  bytes.set(text, head.length);
  return bytes;
}
const VOICE_QUESTION_RE = /uq\d{7}[ -~]*/;
const decoder = new TextDecoder();

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

// The blocks of a realistic answer, in order. A longer answer repeats the middle ones;
// a shorter one drops whole blocks from the end, so every block it has is complete.
const INTRO = " Good question: here is a short overview, then an example you can run and a " +
  "comparison of the usual options.";
const BLOCKS = [
  `## How it works

When a request arrives, the server reads the headers first and decides how to route it. The \
body is parsed only when the handler asks for it, so small requests stay cheap and large \
uploads can be streamed straight to storage.`,
  `- **Routing** picks a handler by method and path.
- **Middleware** runs before the handler: logging, authentication, rate limits.
- **Handlers** return a response, or throw an error that is turned into one.
- *Streaming* responses send the body in chunks as it is produced.`,
  `### Example

\`\`\`ts
import { serve } from "./server.ts";

const port = Number(Deno.env.get("PORT") ?? 8000);
serve({ port }, async (request) => {
  const url = new URL(request.url);
  if (url.pathname === "/health") return new Response("ok");
  const body = await request.json();
  return Response.json({ received: body, at: Date.now() });
});
\`\`\``,
  `### Comparison

| Option | Latency | Memory | Best for |
| --- | --- | --- | --- |
| Polling | 1–2 s | low | small bots |
| Webhook | < 100 ms | low | production |
| Streaming | first byte fast | medium | long answers |`,
  `1. Start with \`polling\` while you develop.
2. Switch to a webhook behind HTTPS in production.
3. Measure before you optimize: *latency*, *memory* and **errors** tell you most.`,
  `### Common pitfalls

- Reading the body twice: the second \`request.json()\` throws, so keep the parsed value.
- Forgetting timeouts on outgoing calls, which lets one slow service stall every request.
  - Set a deadline per call and a smaller one for retries.
- Logging whole payloads, which leaks personal data and fills the disk.`,
  `> **Note:** the numbers in the table are typical for one small server; measure your own \
setup before you choose.`,
];
const CLOSING = modelTokens(
  "\n\nThat covers the basics. If you tell me more about your setup, I can suggest",
);
const FILLER_WORDS = (" which option fits, how to test it locally, what to monitor once it runs " +
  "in production, and how to roll it back safely if something goes wrong.").match(/ \S+/g)!;

/**
 * Splits Markdown into deltas the size of a model's tokens (about four characters):
 * runs of newlines, a word of up to 7 letters with its leading space, up to 3 digits or
 * 3 punctuation marks, runs of spaces. Their concatenation is `text`.
 */
export function modelTokens(text: string): string[] {
  return text.match(/\n+|[ \t]*[A-Za-z]{1,7}|[ \t]*\d{1,3}|[ \t]*[^\sA-Za-z\d]{1,3}|[ \t]+/g) ??
    [];
}

/**
 * Realistic answer `id` as exactly `tokens` deltas (at least 2): the start marker, an
 * introduction, whole Markdown blocks (heading, paragraph, bullet list, code block,
 * table, numbered list; repeated for long answers), a closing paragraph padded to the
 * count, and the end marker as the last delta.
 */
export function realisticAnswer(id: number, tokens: number): string[] {
  const body = Math.max(0, tokens - 2);
  const deltas = modelTokens(INTRO);
  const closing = CLOSING.length + 1; // and at least one filler word
  for (let i = 0;; i++) {
    const block = modelTokens(`\n\n${BLOCKS[i % BLOCKS.length]}`);
    if (deltas.length + block.length + closing > body) break;
    deltas.push(...block);
  }
  if (deltas.length + closing <= body) deltas.push(...CLOSING);
  for (let i = 0; deltas.length < body; i++) deltas.push(FILLER_WORDS[i % FILLER_WORDS.length]);
  deltas.length = body;
  return [startMarker(id), ...deltas, ` ${endMarker(id)}`];
}

/** The deltas of answer `id` for these settings (the fake splits a string at spaces). */
export function answerFor(id: number, kind: AnswerKind, tokens: number): string | string[] {
  return kind === "realistic" ? realisticAnswer(id, tokens) : answerText(id, tokens);
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
  // A voice note's transcript is the question its bytes carry (see voiceNote).
  openai.audio.transcript = ({ bytes }) => VOICE_QUESTION_RE.exec(decoder.decode(bytes))?.[0] ?? "";
  openai.reply = (input) => {
    const id = /uq(\d{7})/.exec(input)?.[1];
    return id === undefined
      ? `Echo: ${input}`
      : answerFor(Number(id), settings.answerKind, settings.answerTokens);
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
