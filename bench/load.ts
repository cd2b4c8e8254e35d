/**
 * The simulated users: a paced phase (each user asks, waits for the whole answer,
 * reads and types for a while, asks again) and a burst (every user asks at once, no
 * pacing). Drivers only send and wait; what the bot did is measured afterwards from
 * the fakes' records (`analyze.ts`).
 */
import type { FakeTelegram } from "../tests/fakes/telegram.ts";
import { type BenchFakes, MARKER_RE, questionText, voiceNote } from "./fakes.ts";
import { sendVoice } from "../tests/fakes/telegram_files.ts";

/** One message a simulated user sent. */
export interface SentMessage {
  /** Answer id (its markers). */
  id: number;
  userId: number;
  updateId: number;
  /** `Date.now()` when the update was queued at fake Telegram (available to getUpdates). */
  pushedAt: number;
  /** False when no final answer came within the timeout. */
  answered: boolean;
}

/** Methods that put answer text in front of the user for good (not drafts). */
export const FINAL_METHODS = new Set(["sendMessage", "sendRichMessage", "editMessageText"]);
/** Methods that show answer text, drafts included. */
export const VISIBLE_METHODS = new Set([
  ...FINAL_METHODS,
  "sendMessageDraft",
  "sendRichMessageDraft",
]);

/**
 * Watches fake Telegram's record for final answers (a call of a FINAL_METHOD carrying
 * an end marker) and wakes the users waiting for them. It scans the new records every
 * few ms instead of using `waitForCall`, whose cost grows with calls × waiters.
 */
export class AnswerWatcher {
  #telegram: FakeTelegram;
  #next = 0;
  #answered = new Set<number>();
  #waiters = new Map<number, () => void>();
  #timer: ReturnType<typeof setInterval>;

  constructor(telegram: FakeTelegram, intervalMs = 2) {
    this.#telegram = telegram;
    this.#timer = setInterval(() => this.#scan(), intervalMs);
  }

  /** Resolves true when answer `id` is final, false after `timeoutMs`. */
  wait(id: number, timeoutMs: number): Promise<boolean> {
    this.#scan();
    if (this.#answered.has(id)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(id);
        resolve(false);
      }, timeoutMs);
      this.#waiters.set(id, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  close(): void {
    clearInterval(this.#timer);
  }

  #scan(): void {
    const calls = this.#telegram.calls;
    for (; this.#next < calls.length; this.#next++) {
      const call = calls[this.#next];
      if (!call.ok || !FINAL_METHODS.has(call.method)) continue;
      for (const m of JSON.stringify(call.params).matchAll(MARKER_RE)) {
        if (m[2] !== "e") continue;
        const id = Number(m[1]);
        this.#answered.add(id);
        const wake = this.#waiters.get(id);
        this.#waiters.delete(id);
        wake?.();
      }
    }
  }
}

/** Hands out answer ids, unique within one run of the fakes. */
export class Ids {
  #next = 1;
  next(): number {
    return this.#next++;
  }
}

export interface DriveContext {
  fakes: BenchFakes;
  watcher: AnswerWatcher;
  ids: Ids;
  /** Longest wait for one answer before it counts as failed. */
  answerTimeoutMs: number;
  /** How users ask: a text, or a voice note whose transcript is that text. */
  input?: "text" | "voice";
  /** Counts of questions asked and of waits ended (answered or timed out), for watchers. */
  progress?: { asked: number; done: number };
}

function ask(ctx: DriveContext, userId: number, messages: SentMessage[]): SentMessage {
  const id = ctx.ids.next();
  const user = { id: userId, first_name: `User${userId}`, language_code: "en" };
  const pushedAt = Date.now();
  const { update_id } = ctx.input === "voice"
    ? sendVoice(ctx.fakes.telegram, user, voiceNote(questionText(id)), { duration: 3 })
    : ctx.fakes.telegram.sendText(user, questionText(id));
  const sent = { id, userId, updateId: update_id, pushedAt, answered: false };
  messages.push(sent);
  if (ctx.progress) ctx.progress.asked++;
  return sent;
}

/** Paced phase: how users behave. */
export interface PacedOptions {
  userIds: number[];
  messagesPerUser: number;
  /** Reading and typing time between an answer and the next question, ms. */
  thinkMs: [number, number];
  /** Users start at random moments within this time, ms. */
  rampMs: number;
  random: () => number;
}

/**
 * Each user starts within the ramp, then asks `messagesPerUser` times, waiting for the
 * final answer and a think time in between. Resolves when every user is done.
 */
export async function drivePaced(ctx: DriveContext, o: PacedOptions): Promise<SentMessage[]> {
  const messages: SentMessage[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const between = ([min, max]: [number, number]) => min + o.random() * (max - min);
  await Promise.all(o.userIds.map(async (userId) => {
    await sleep(o.random() * o.rampMs);
    for (let i = 0; i < o.messagesPerUser; i++) {
      if (i > 0) await sleep(between(o.thinkMs));
      const sent = ask(ctx, userId, messages);
      sent.answered = await ctx.watcher.wait(sent.id, ctx.answerTimeoutMs);
      if (ctx.progress) ctx.progress.done++;
    }
  }));
  return messages;
}

/** Burst: every user asks once, all at the same moment; resolves when all are answered. */
export async function driveBurst(ctx: DriveContext, userIds: number[]): Promise<SentMessage[]> {
  const messages: SentMessage[] = [];
  for (const userId of userIds) ask(ctx, userId, messages);
  await Promise.all(messages.map(async (m) => {
    m.answered = await ctx.watcher.wait(m.id, ctx.answerTimeoutMs);
    if (ctx.progress) ctx.progress.done++;
  }));
  return messages;
}
