/**
 * One measured run: one checkout of the bot with one store (embedded KV or a real
 * redis-server), fresh fakes, start-up runs, an idle pause, the paced phase and two
 * bursts (new users, then the same users again). Everything it starts it stops, also
 * when a phase fails.
 */
import { startRedis, type TestRedis } from "../tests/helpers/redis.ts";
import { analyzePhase, type PhaseResult } from "./analyze.ts";
import { type BenchBot, spawnBenchBot } from "./bot.ts";
import {
  type AnswerKind,
  type BenchFakes,
  CHANNEL,
  type FakeSettings,
  startBenchFakes,
} from "./fakes.ts";
import {
  closeInspector,
  type HeapSummary,
  type HeapWatch,
  type Inspector,
  inspectorUrl,
  openInspector,
  startHeapWatch,
} from "./heap.ts";
import { AnswerWatcher, driveBurst, drivePaced, Ids, type SentMessage } from "./load.ts";
import { childPids, type GitRevision, machineBusySeconds, sampleProcess } from "./proc.ts";
import { newestProfile, type ProfileSummary, summarizeProfile } from "./profile.ts";
import { commandStats, statsDelta } from "./redis_stats.ts";
import { median, seededRandom } from "./stats.ts";

export type StoreKind = "kv" | "redis";

/** What to run and how hard. */
export interface ScenarioSettings extends FakeSettings {
  users: number;
  messagesPerUser: number;
  thinkMs: [number, number];
  rampMs: number;
  /** Users in each burst (0: no burst). */
  burstUsers: number;
  answerTimeoutMs: number;
  /** Counted start-ups besides the one that runs the load. */
  startupRuns: number;
  /** One uncounted start first, so Deno's caches are warm. */
  warmup: boolean;
  idleMs: number;
  seed: number;
  logLevel: string;
  /** What users send: texts, or voice notes transcribed into those texts. */
  input: "text" | "voice";
  /** The bot's OPENAI_API: conversations (its default), responses or chat. */
  openaiApi: string;
  /** Write a CPU profile of the loaded bot into this directory. */
  cpuProfDir?: string;
  /** Extra Deno flags for the loaded bot (inserted after `run`). */
  botFlags: string[];
  /** Inspect the loaded bot's memory during the paced phase; files go here. */
  heapDir?: string;
}

/** The settings of a whole run: both answer kinds, each with its length and bursts. */
export interface RunSettings
  extends Omit<ScenarioSettings, "answerKind" | "answerTokens" | "burstUsers"> {
  realisticTokens: number;
  shortTokens: number;
  /** Users in each burst with short answers (0: no burst). */
  burstUsers: number;
  /** Users in each burst with realistic answers (0: no burst). */
  realisticBurstUsers: number;
}

/** One scenario's settings: the run's, with this answer kind's length and bursts. */
export function settingsFor(run: RunSettings, kind: AnswerKind): ScenarioSettings {
  const { realisticTokens, shortTokens, realisticBurstUsers, ...rest } = run;
  return {
    ...rest,
    answerKind: kind,
    answerTokens: kind === "realistic" ? realisticTokens : shortTokens,
    burstUsers: kind === "realistic" ? realisticBurstUsers : run.burstUsers,
  };
}

/** The checkout under test. */
export interface BotCheckout {
  /** Short name for tables, e.g. "current" or a revision. */
  name: string;
  /** Absolute path without a trailing slash. */
  root: string;
  revision: GitRevision;
}

export interface ScenarioResult {
  /** "<checkout> <store> <answers>", e.g. "current kv realistic". */
  label: string;
  checkout: string;
  revision: GitRevision;
  store: StoreKind;
  answers: AnswerKind;
  /** Tokens (text deltas) per answer. */
  answerTokens: number;
  argv: string[];
  startupMs: { samples: number[]; median?: number };
  memory: {
    /** After start-up and `idleMs` without traffic. */
    idleRssMb: number;
    idlePeakRssMb: number;
    /** The idle RSS split: anonymous memory (heaps) and file pages (the deno binary). */
    idleRssAnonMb: number;
    idleRssFileMb: number;
    /** VmHWM after the paced phase (includes start-up). */
    pacedPeakRssMb: number;
    /** VmHWM after the bursts. */
    burstPeakRssMb: number;
  };
  phases: PhaseResult[];
  /** Most getChatMember calls for one user over the whole run (shorter than the cache TTL). */
  maxGetChatMemberPerUser: number;
  /** From the first start-up to the bot's stop, s. */
  runSeconds: number;
  exitCode: number;
  /** ERROR / FATAL lines the bot logged. */
  errorLines: number;
  /** WARNING lines the bot logged. */
  warningLines: number;
  /** Up to 5 distinct WARNING / ERROR messages (timestamps cut), to see what went wrong. */
  problems: string[];
  /** The last lines of the bot's output when something went wrong. */
  outputTail?: string;
  profile?: ProfileSummary;
  heap?: HeapSummary;
}

const PACED_USER_BASE = 1_000_000;
const BURST_USER_BASE = 2_000_000;

/** Runs one scenario; `say` gets progress lines. */
export async function runScenario(
  checkout: BotCheckout,
  store: StoreKind,
  s: ScenarioSettings,
  ticks: number,
  say: (line: string) => void,
): Promise<ScenarioResult> {
  const label = `${checkout.name} ${store} ${s.answerKind}`;
  const fakes = await startBenchFakes(s);
  let redis: TestRedis | undefined;
  const dataDir = `data/bench-${crypto.randomUUID()}`;
  let bot: BenchBot | undefined;
  let watcher: AnswerWatcher | undefined;
  let inspector: Inspector | undefined;
  try {
    if (store === "redis") redis = await startRedis();
    const redisPid = redis ? childPids("redis-server")[0] : undefined;
    const env: Record<string, string> = {
      TELEGRAM_BOT_TOKEN: fakes.telegram.token,
      TELEGRAM_API_ROOT: fakes.telegram.apiRoot,
      OPENAI_API_KEY: fakes.openai.apiKey,
      OPENAI_BASE_URL: fakes.openai.baseURL,
      OPENAI_MODEL: "gpt-bench",
      CHANNEL_ID: `@${CHANNEL.username}`,
      KV_PATH: `${dataDir}/bot.kv`,
      LOG_LEVEL: s.logLevel,
      OPENAI_API: s.openaiApi,
      SHUTDOWN_TIMEOUT: "10",
      ...(redis ? { REDIS_URL: redis.url } : {}),
    };

    const runStarted = Date.now();
    const startups: number[] = [];
    for (let i = 0; i < s.startupRuns + (s.warmup ? 1 : 0); i++) {
      const b = spawnBenchBot(checkout.root, env);
      const ms = await untilFirstPoll(fakes, b);
      if (!s.warmup || i > 0) startups.push(ms);
      await stopCleanly(b, label);
    }
    const flags = [
      ...(s.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${s.cpuProfDir}`] : []),
      ...(s.heapDir ? ["--inspect=127.0.0.1:0"] : []),
      ...s.botFlags,
    ];
    if (s.cpuProfDir) await Deno.mkdir(s.cpuProfDir, { recursive: true });
    bot = spawnBenchBot(checkout.root, env, flags);
    const running = bot;
    startups.push(await untilFirstPoll(fakes, running));
    say(`${label}: start-up ${startups.map((ms) => `${ms} ms`).join(", ")}`);

    await new Promise((r) => setTimeout(r, s.idleMs));
    const idle = sampleProcess(running.pid, ticks);

    watcher = new AnswerWatcher(fakes.telegram);
    const progress = { asked: 0, done: 0 };
    const ctx = {
      fakes,
      watcher,
      ids: new Ids(),
      answerTimeoutMs: s.answerTimeoutMs,
      progress,
      input: s.input,
    };
    let heapWatch: HeapWatch | undefined;
    if (s.heapDir) {
      const url = inspectorUrl(running.output());
      if (!url) throw new Error("--heap: the bot printed no inspector URL");
      inspector = await openInspector(url);
      heapWatch = await startHeapWatch({
        inspector,
        pid: running.pid,
        ticks,
        dir: s.heapDir,
        root: checkout.root,
        inFlight: () => progress.asked - progress.done,
        threshold: Math.min(100, Math.ceil(s.users / 2)),
        // When the first users' answers are three quarters written.
        notBefore: Date.now() + s.rampMs / 2 + 0.75 * (s.timeToFirstTokenMs +
              (s.tokensPerSecond > 0 ? (1000 * s.answerTokens) / s.tokensPerSecond : 0)),
        say: (line) => say(`${label}: ${line}`),
      });
    }
    const random = seededRandom(s.seed);
    const phases: PhaseResult[] = [];
    const measure = async (name: string, users: number, drive: () => Promise<SentMessage[]>) => {
      const result = await measurePhase(
        { fakes, bot: running, redisPid, redisPort: redis?.port, ticks, settings: s },
        name,
        users,
        drive,
      );
      phases.push(result);
      say(
        `${label}: ${name}: ${result.answered}/${result.messages} answered, ` +
          `${result.answersPerSecond.toFixed(1)} answers/s, ` +
          `${result.cpuMsPerAnswer.toFixed(2)} CPU ms/answer, bot-added p50 ` +
          `${result.botAddedMs.p50 ?? "-"} ms`,
      );
    };

    const pacedUsers = range(PACED_USER_BASE, s.users);
    for (const id of pacedUsers) fakes.subscribe(id);
    await measure("paced", s.users, () =>
      drivePaced(ctx, {
        userIds: pacedUsers,
        messagesPerUser: s.messagesPerUser,
        thinkMs: s.thinkMs,
        rampMs: s.rampMs,
        random,
      }));
    const paced = sampleProcess(running.pid, ticks);
    const heap = await heapWatch?.stop();
    closeInspector(inspector);
    inspector = undefined;

    if (s.burstUsers > 0) {
      const burstUsers = range(BURST_USER_BASE, s.burstUsers);
      for (const id of burstUsers) fakes.subscribe(id);
      await measure("burst, new users", s.burstUsers, () => driveBurst(ctx, burstUsers));
      await measure("burst, same users", s.burstUsers, () => driveBurst(ctx, burstUsers));
    }
    const burst = sampleProcess(running.pid, ticks);

    watcher.close();
    watcher = undefined;
    const exitCode = await running.stop();
    bot = undefined;
    const output = running.output();
    const { errors: errorLines, warnings: warningLines } = running.logCounts();
    const problems = running.problems();
    const failed = phases.some((p) => p.failed > 0);
    const memberCalls = new Map<unknown, number>();
    for (const c of fakes.telegram.callsTo("getChatMember")) {
      memberCalls.set(c.params.user_id, (memberCalls.get(c.params.user_id) ?? 0) + 1);
    }
    let profile: ProfileSummary | undefined;
    if (s.cpuProfDir) {
      const file = newestProfile(s.cpuProfDir);
      if (file) profile = summarizeProfile(file, checkout.root);
    }
    return {
      label,
      checkout: checkout.name,
      revision: checkout.revision,
      store,
      answers: s.answerKind,
      answerTokens: s.answerTokens,
      argv: running.argv,
      startupMs: { samples: startups, median: median(startups) },
      memory: {
        idleRssMb: round1(idle.rssMb),
        idlePeakRssMb: round1(idle.peakRssMb),
        idleRssAnonMb: round1(idle.rssAnonMb),
        idleRssFileMb: round1(idle.rssFileMb),
        pacedPeakRssMb: round1(paced.peakRssMb),
        burstPeakRssMb: round1(burst.peakRssMb),
      },
      phases,
      maxGetChatMemberPerUser: Math.max(0, ...memberCalls.values()),
      runSeconds: Math.round((Date.now() - runStarted) / 100) / 10,
      exitCode,
      errorLines,
      warningLines,
      problems,
      ...(exitCode !== 0 || errorLines > 0 || failed ? { outputTail: tail(output, 40) } : {}),
      ...(profile ? { profile } : {}),
      ...(heap ? { heap } : {}),
    };
  } catch (error) {
    const output = bot?.output();
    throw new Error(
      `${label}: ${error instanceof Error ? error.message : error}` +
        (output ? `\nbot output (tail):\n${tail(output, 40)}` : ""),
    );
  } finally {
    closeInspector(inspector);
    watcher?.close();
    await bot?.stop();
    await fakes.close();
    await redis?.stop();
    await Deno.remove(`${checkout.root}/${dataDir}`, { recursive: true }).catch(() => {});
  }
}

/** Waits for the bot's first getUpdates; resolves with the ms since spawn. */
async function untilFirstPoll(fakes: BenchFakes, bot: BenchBot): Promise<number> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("no getUpdates within 60 s of the start")), 60_000);
    bot.exited.then((code) =>
      reject(new Error(`the bot exited (code ${code}) before its first getUpdates`))
    );
  });
  failed.catch(() => {});
  try {
    return (await Promise.race([fakes.pollAfter(bot.spawnedAt), failed])) - bot.spawnedAt;
  } finally {
    clearTimeout(timer);
  }
}

async function stopCleanly(bot: BenchBot, label: string): Promise<void> {
  const code = await bot.stop();
  if (code !== 0) {
    throw new Error(`${label}: the bot exited with ${code} on SIGTERM:\n${tail(bot.output(), 40)}`);
  }
}

interface PhaseRig {
  fakes: BenchFakes;
  bot: BenchBot;
  redisPid?: number;
  redisPort?: number;
  ticks: number;
  settings: ScenarioSettings;
}

async function measurePhase(
  rig: PhaseRig,
  name: string,
  users: number,
  drive: () => Promise<SentMessage[]>,
): Promise<PhaseResult> {
  const { fakes, bot, ticks } = rig;
  const cpu = () => ({
    bot: sampleProcess(bot.pid, ticks).cpuSeconds,
    bench: sampleProcess(Deno.pid, ticks).cpuSeconds,
    redis: rig.redisPid ? sampleProcess(rig.redisPid, ticks).cpuSeconds : 0,
    machine: machineBusySeconds(ticks),
  });
  const callsFrom = fakes.telegram.calls.length;
  const aiFrom = fakes.openaiExchanges.length;
  const lag = watchLag();
  const redisBefore = rig.redisPort ? await commandStats(rig.redisPort) : undefined;
  const before = cpu();
  const started = Date.now();
  const exited = bot.exited.then((code) => {
    throw new Error(`the bot exited (code ${code}) during the ${name} phase`);
  });
  const messages = await Promise.race([drive(), exited]);
  exited.catch(() => {});
  // Late calls of the last answers (an edit after the final message) still count.
  await new Promise((r) => setTimeout(r, Math.max(200, 5 * rig.settings.telegramLatencyMs)));
  const after = cpu();
  const wall = Date.now() - started;
  const lagMs = lag.stop();
  const redisCommands = rig.redisPort && redisBefore
    ? statsDelta(redisBefore, await commandStats(rig.redisPort))
    : undefined;
  return analyzePhase({
    name,
    users,
    messages,
    calls: fakes.telegram.calls.slice(callsFrom),
    openaiExchanges: fakes.openaiExchanges.slice(aiFrom),
    telegramLatencyMs: rig.settings.telegramLatencyMs,
    botCpuSeconds: after.bot - before.bot,
    benchCpuSeconds: after.bench - before.bench,
    otherCpuSeconds: (after.machine - before.machine) -
      (after.bot - before.bot) - (after.bench - before.bench) - (after.redis - before.redis),
    redisCpuSeconds: after.redis - before.redis,
    cpuWallMs: wall,
    benchLagMs: lagMs,
    redisCommands,
  });
}

/**
 * Samples how late a 20 ms timer fires in the bench process: when the fakes' own
 * process is too busy, their set latencies stretch and the bot's figures suffer.
 */
function watchLag(periodMs = 20): { stop(): number[] } {
  const samples: number[] = [];
  let expected = performance.now() + periodMs;
  const timer = setInterval(() => {
    const now = performance.now();
    samples.push(Math.max(0, now - expected));
    expected = now + periodMs;
  }, periodMs);
  return {
    stop() {
      clearInterval(timer);
      return samples;
    },
  };
}

const range = (base: number, n: number) => Array.from({ length: n }, (_, i) => base + i + 1);
const round1 = (x: number) => Math.round(x * 10) / 10;
const tail = (text: string, lines: number) => text.split("\n").slice(-lines).join("\n");
