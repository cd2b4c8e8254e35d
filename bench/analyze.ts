/**
 * Turns one phase's records (messages sent, fake Telegram's calls, fake OpenAI's
 * streams) into the figures of the report. Pure: no I/O, so it can be checked on
 * hand-made records.
 *
 * Definitions (bench/README.md explains them for readers):
 * - An answer's window runs from the moment its update was queued at fake Telegram
 *   (available to getUpdates) to the final message: the last sendMessage /
 *   sendRichMessage / editMessageText carrying the answer's end marker.
 * - Time waiting on the fakes is the union, inside the window, of: every getUpdates
 *   answer in flight up to the one that delivered the update ([decided, decided +
 *   latency]); every Bot API call for the user's chat ([arrival, arrival + latency]);
 *   the answer's OpenAI stream ([request arrival, last byte sent]). Bot-added latency
 *   is the window minus that union: the bot's own work, its store and its queueing.
 * - First visible text: the first call of a VISIBLE_METHOD carrying the start marker,
 *   minus the moment fake OpenAI sent the first text delta.
 */
import type { RecordedCall } from "../tests/fakes/telegram.ts";
import { MARKER_RE } from "./fakes.ts";
import { FINAL_METHODS, type SentMessage, VISIBLE_METHODS } from "./load.ts";
import { type Interval, mean, percentile, unionLength } from "./stats.ts";
import type { Exchange } from "./tap.ts";

/** p50 / p99 / mean of a set of ms values. */
export interface Distribution {
  count: number;
  p50?: number;
  p99?: number;
  mean?: number;
  max?: number;
}

/** The figures of one phase. */
export interface PhaseResult {
  name: string;
  users: number;
  messages: number;
  answered: number;
  failed: number;
  /** First update queued → last final message, s. */
  durationSeconds: number;
  answersPerSecond: number;
  /** Most answers between update and final message at one moment. */
  peakInFlight: number;
  botCpuSeconds: number;
  cpuMsPerAnswer: number;
  /** Bot CPU time over the phase's wall time (100 = one core busy). */
  botCpuPercent: number;
  /** Update queued → final message. */
  endToEndMs: Distribution;
  /** Part of endToEndMs spent waiting on the fakes. */
  fakeWaitMs: Distribution;
  botAddedMs: Distribution;
  /** The part of botAddedMs before the OpenAI request arrived (gate, store, lock). */
  botBeforeStreamMs: Distribution;
  /** The part of botAddedMs after the OpenAI stream ended (final message). */
  botAfterStreamMs: Distribution;
  /** First token sent by fake OpenAI → first answer text sent to Telegram. */
  firstVisibleMs: Distribution;
  /** Bot API calls per answered message, by method (getUpdates: all polls in the phase). */
  callsPerAnswer: Record<string, number>;
  /** OpenAI requests per answered message, by route. */
  openaiPerAnswer: Record<string, number>;
  getChatMemberPer1000Messages: number;
  /** Most getChatMember calls for one user in this phase. */
  maxGetChatMemberPerUser: number;
  /** Bot API calls that failed, by "method code" (e.g. "sendMessage 400"). */
  failedCalls: Record<string, number>;
  /** How late the bench's own timers fired (its event loop was busy), ms. */
  benchLagMs: Distribution;
  /** CPU of the bench process itself (fakes and drivers) over the phase, % of one core. */
  benchCpuPercent: number;
  /**
   * CPU of every other process on the machine over the phase, % of one core: other
   * work competing for the cores, which makes the figures noisy (0 when unknown).
   */
  otherCpuPercent: number;
  /** redis-server's CPU ms per answer (0 with the embedded store). */
  redisCpuMsPerAnswer: number;
  /** Redis commands per answer by command (script internals included); {} without Redis. */
  redisCommandsPerAnswer: Record<string, number>;
}

export interface PhaseInput {
  name: string;
  users: number;
  messages: SentMessage[];
  /** Fake Telegram's calls recorded during the phase. */
  calls: RecordedCall[];
  /** Fake OpenAI's exchanges answered during the phase. */
  openaiExchanges: Exchange[];
  telegramLatencyMs: number;
  botCpuSeconds: number;
  /** Wall time the CPU figures cover, ms. */
  cpuWallMs: number;
  /** CPU seconds of the bench process over the same time. */
  benchCpuSeconds: number;
  /** CPU seconds of every other process over the same time (omit when unknown). */
  otherCpuSeconds?: number;
  /** CPU seconds of redis-server over the same time (0 without Redis). */
  redisCpuSeconds: number;
  /** Lateness samples of a periodic timer in the bench process, ms. */
  benchLagMs: number[];
  /** Commands Redis ran during the phase, by command (omit without Redis). */
  redisCommands?: Record<string, number>;
}

function distribution(values: number[]): Distribution {
  return {
    count: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    mean: mean(values),
    max: values.length ? values.reduce((a, b) => Math.max(a, b)) : undefined,
  };
}

/** The user a Bot API call concerns: its chat, or the user asked about (getChatMember). */
function callUser(call: RecordedCall): number | undefined {
  const id = call.method === "getChatMember" ? call.params.user_id : call.params.chat_id;
  return typeof id === "number" ? id : undefined;
}

/** `/v1/conversations/conv_1/items` → `/v1/conversations/{id}/items`. */
function route(exchange: Exchange): string {
  const path = exchange.path.replace(/\/(conv|resp|msg|thread|run|asst)_[^/]+/g, "/{id}");
  return `${exchange.method} ${path}`;
}

/** Answer ids (with "s"/"e") whose markers appear in a call's parameters. */
function markers(call: RecordedCall): { id: number; end: boolean }[] {
  return [...JSON.stringify(call.params).matchAll(MARKER_RE)].map((m) => ({
    id: Number(m[1]),
    end: m[2] === "e",
  }));
}

/** Computes a phase's figures; see the module comment for the definitions. */
export function analyzePhase(input: PhaseInput): PhaseResult {
  const latency = input.telegramLatencyMs;
  const pushedAt = new Map<number, number>();
  for (const m of input.messages) pushedAt.set(m.updateId, m.pushedAt);

  // getUpdates answers: when each was decided and which one delivered which update.
  const polls: Interval[] = [];
  const deliveredBy = new Map<number, Interval>();
  for (const call of input.calls) {
    if (call.method !== "getUpdates" || !call.ok || !Array.isArray(call.result)) continue;
    const ids = (call.result as { update_id: number }[]).map((u) => u.update_id);
    if (ids.length === 0) continue; // A timeout or a superseded poll: on nobody's path.
    const pushes = ids.map((id) => pushedAt.get(id)).filter((t): t is number => t !== undefined);
    // A held poll is answered when the first update arrives; a poll that found
    // updates waiting is answered at once.
    const decided = Math.max(call.at, pushes.length ? Math.min(...pushes) : call.at);
    const poll = { start: decided, end: decided + latency };
    polls.push(poll);
    for (const id of ids) if (!deliveredBy.has(id)) deliveredBy.set(id, poll);
  }

  const byUser = new Map<number, RecordedCall[]>();
  const firstVisible = new Map<number, number>();
  const finalAt = new Map<number, number>();
  for (const call of input.calls) {
    const user = callUser(call);
    if (user !== undefined) {
      let list = byUser.get(user);
      if (!list) byUser.set(user, list = []);
      list.push(call);
    }
    if (!call.ok || !VISIBLE_METHODS.has(call.method)) continue;
    for (const { id, end } of markers(call)) {
      if (!end && !firstVisible.has(id)) firstVisible.set(id, call.at);
      if (end && FINAL_METHODS.has(call.method)) {
        finalAt.set(id, Math.max(finalAt.get(id) ?? -Infinity, call.at));
      }
    }
  }

  const streams = new Map<number, Exchange>();
  for (const ex of input.openaiExchanges) {
    const id = ex.firstChunkText ? /bq(\d{7})s/.exec(ex.firstChunkText)?.[1] : undefined;
    if (id !== undefined) streams.set(Number(id), ex);
  }

  const endToEnd: number[] = [];
  const waits: number[] = [];
  const added: number[] = [];
  const before: number[] = [];
  const after: number[] = [];
  const visible: number[] = [];
  const windows: Interval[] = [];
  for (const m of input.messages) {
    const end = finalAt.get(m.id);
    if (end === undefined) continue;
    const window = { start: m.pushedAt, end };
    windows.push(window);
    const delivery = deliveredBy.get(m.updateId);
    const intervals: Interval[] = polls.filter((p) => !delivery || p.end <= delivery.end);
    for (const call of byUser.get(m.userId) ?? []) {
      if (call.method === "getUpdates") continue;
      if (call.at >= window.start && call.at <= window.end) {
        intervals.push({ start: call.at, end: call.at + latency });
      }
    }
    const stream = streams.get(m.id);
    const streamEnd = stream ? stream.endedAt ?? stream.respondedAt : undefined;
    if (stream && streamEnd !== undefined) {
      intervals.push({ start: stream.arrivedAt, end: streamEnd });
      // Bot time in a part of the window: its length minus the waits inside it.
      const botIn = (part: Interval) =>
        Math.max(0, part.end - part.start) - unionLength(intervals, part);
      before.push(botIn({ start: window.start, end: Math.min(stream.arrivedAt, end) }));
      after.push(botIn({ start: Math.max(streamEnd, window.start), end }));
    }
    const wait = unionLength(intervals, window);
    endToEnd.push(end - m.pushedAt);
    waits.push(wait);
    added.push(end - m.pushedAt - wait);
    const shown = firstVisible.get(m.id);
    if (shown !== undefined && stream?.firstChunkAt !== undefined) {
      visible.push(shown - stream.firstChunkAt);
    }
  }

  // Peak in flight: sweep over window starts and ends.
  const edges = windows.flatMap((w) => [[w.start, 1], [w.end, -1]] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let inFlight = 0;
  let peakInFlight = 0;
  for (const [, step] of edges) peakInFlight = Math.max(peakInFlight, inFlight += step);

  const answered = windows.length;
  const firstPush = input.messages.reduce((a, m) => Math.min(a, m.pushedAt), Infinity);
  const lastFinal = windows.reduce((a, w) => Math.max(a, w.end), -Infinity);
  const durationMs = answered ? lastFinal - firstPush : 0;

  const ids = new Set(input.messages.map((m) => m.id));
  const users = new Set(input.messages.map((m) => m.userId));
  const callCounts: Record<string, number> = {};
  const memberCalls = new Map<number, number>();
  for (const call of input.calls) {
    const user = callUser(call);
    const ours = call.method === "getUpdates" || (user !== undefined && users.has(user)) ||
      markers(call).some((x) => ids.has(x.id));
    if (!ours) continue;
    callCounts[call.method] = (callCounts[call.method] ?? 0) + 1;
    if (call.method === "getChatMember" && user !== undefined) {
      memberCalls.set(user, (memberCalls.get(user) ?? 0) + 1);
    }
  }
  const perAnswer = (counts: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(counts).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, answered ? v / answered : 0]),
    );
  const openaiCounts: Record<string, number> = {};
  for (const ex of input.openaiExchanges) {
    const key = route(ex);
    openaiCounts[key] = (openaiCounts[key] ?? 0) + 1;
  }
  const failedCalls: Record<string, number> = {};
  for (const call of input.calls) {
    if (call.ok) continue;
    const key = `${call.method} ${call.error?.error_code ?? "?"}`;
    failedCalls[key] = (failedCalls[key] ?? 0) + 1;
  }

  const cpuMsPerAnswer = answered ? (input.botCpuSeconds * 1000) / answered : 0;
  return {
    name: input.name,
    users: input.users,
    messages: input.messages.length,
    answered,
    failed: input.messages.length - answered,
    durationSeconds: durationMs / 1000,
    answersPerSecond: durationMs > 0 ? answered / (durationMs / 1000) : 0,
    peakInFlight,
    botCpuSeconds: input.botCpuSeconds,
    cpuMsPerAnswer,
    botCpuPercent: input.cpuWallMs > 0 ? (100 * input.botCpuSeconds * 1000) / input.cpuWallMs : 0,
    endToEndMs: distribution(endToEnd),
    fakeWaitMs: distribution(waits),
    botAddedMs: distribution(added),
    botBeforeStreamMs: distribution(before),
    botAfterStreamMs: distribution(after),
    firstVisibleMs: distribution(visible),
    callsPerAnswer: perAnswer(callCounts),
    openaiPerAnswer: perAnswer(openaiCounts),
    getChatMemberPer1000Messages: input.messages.length
      ? (1000 * (callCounts.getChatMember ?? 0)) / input.messages.length
      : 0,
    maxGetChatMemberPerUser: Math.max(0, ...memberCalls.values()),
    failedCalls,
    benchLagMs: distribution(input.benchLagMs),
    otherCpuPercent: input.cpuWallMs > 0
      ? Math.max(0, (100 * (input.otherCpuSeconds ?? 0) * 1000) / input.cpuWallMs)
      : 0,
    benchCpuPercent: input.cpuWallMs > 0
      ? (100 * input.benchCpuSeconds * 1000) / input.cpuWallMs
      : 0,
    redisCpuMsPerAnswer: answered ? (input.redisCpuSeconds * 1000) / answered : 0,
    redisCommandsPerAnswer: perAnswer(input.redisCommands ?? {}),
  };
}
