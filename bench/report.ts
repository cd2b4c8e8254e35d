/**
 * The report: a summary of the key figures with a row per store × answer kind ×
 * revision (and the ratio of the revisions), then per answer kind one table with a
 * column per scenario (store × revision), ratio columns for the comparisons the run
 * asked for, and the issue's targets with ✓ / ✗.
 */
import type { PhaseResult } from "./analyze.ts";
import type { ScenarioResult } from "./scenario.ts";
import type { ProfileEntry } from "./profile.ts";
import type { HeapSummary, MemoryEntry } from "./heap.ts";

/** A figure of the report: how to read it from a scenario, and its target if any. */
export interface Figure {
  label: string;
  value: (s: ScenarioResult) => number | undefined;
  /** A second value shown after a slash (e.g. the p99 beside a p50); not in ratios. */
  second?: (s: ScenarioResult) => number | undefined;
  digits: number;
  /** Human text of the target, e.g. "≤ 25". */
  target?: string;
  /** Whether a value meets the target. */
  meets?: (v: number) => boolean;
  /** Not a figure of the bot (machine noise): no ratio. */
  noRatio?: boolean;
}

const phase = (s: ScenarioResult, name: string): PhaseResult | undefined =>
  s.phases.find((p) => p.name === name);
const paced = (s: ScenarioResult) => phase(s, "paced");
const bursts = (s: ScenarioResult) => s.phases.filter((p) => p.name.startsWith("burst"));

/** The largest value of `f` over the bursts; undefined without bursts. */
function maxOverBursts(s: ScenarioResult, f: (p: PhaseResult) => number): number | undefined {
  const b = bursts(s);
  return b.length ? Math.max(...b.map(f)) : undefined;
}

/** The ceiling: the best answers/s of the bursts. */
export function ceiling(s: ScenarioResult): number | undefined {
  const b = bursts(s);
  return b.length ? Math.max(...b.map((p) => p.answersPerSecond)) : undefined;
}

/** The bot's CPU ms per 1,000 tokens of answer in the paced phase. */
export function perThousandTokens(s: ScenarioResult): number | undefined {
  const ms = paced(s)?.cpuMsPerAnswer;
  return ms === undefined ? undefined : (1000 * ms) / s.answerTokens;
}

/** Every figure, in table order. Bot API methods are added per run (see `figures`). */
function baseFigures(): Figure[] {
  return [
    {
      label: "answers/s at the ceiling (best burst)",
      value: ceiling,
      digits: 0,
      target: "≥ 500",
      meets: (v) => v >= 500,
    },
    {
      label: "  burst, new users: answers/s",
      value: (s) => phase(s, "burst, new users")?.answersPerSecond,
      digits: 0,
    },
    {
      label: "  burst, same users: answers/s",
      value: (s) => phase(s, "burst, same users")?.answersPerSecond,
      digits: 0,
    },
    {
      label: "  peak answers in flight (burst)",
      value: (s) => maxOverBursts(s, (p) => p.peakInFlight),
      digits: 0,
    },
    {
      label: "  bot CPU % during burst, same users",
      value: (s) => phase(s, "burst, same users")?.botCpuPercent,
      digits: 0,
    },
    {
      label: "  bench's own CPU % during burst, same users",
      value: (s) => phase(s, "burst, same users")?.benchCpuPercent,
      digits: 0,
    },
    { label: "CPU ms per answer, paced", value: (s) => paced(s)?.cpuMsPerAnswer, digits: 2 },
    { label: "CPU ms per 1,000 answer tokens, paced", value: perThousandTokens, digits: 1 },
    {
      label: "CPU ms per answer, burst new users",
      value: (s) => phase(s, "burst, new users")?.cpuMsPerAnswer,
      digits: 2,
    },
    {
      label: "CPU ms per answer, burst same users",
      value: (s) => phase(s, "burst, same users")?.cpuMsPerAnswer,
      digits: 2,
    },
    {
      label: "  redis-server CPU ms per answer, paced",
      value: (s) => s.store === "redis" ? paced(s)?.redisCpuMsPerAnswer : undefined,
      digits: 2,
    },
    {
      label: "bot-added latency p50, paced (ms)",
      value: (s) => paced(s)?.botAddedMs.p50,
      digits: 0,
      target: "≤ 5",
      meets: (v) => v <= 5,
    },
    {
      label: "bot-added latency p99, paced (ms)",
      value: (s) => paced(s)?.botAddedMs.p99,
      digits: 0,
      target: "≤ 25",
      meets: (v) => v <= 25,
    },
    {
      label: "  bot-added before the OpenAI request p50 / p99 (ms)",
      value: (s) => paced(s)?.botBeforeStreamMs.p50,
      second: (s) => paced(s)?.botBeforeStreamMs.p99,
      digits: 0,
    },
    {
      label: "  bot-added after the stream's end p50 / p99 (ms)",
      value: (s) => paced(s)?.botAfterStreamMs.p50,
      second: (s) => paced(s)?.botAfterStreamMs.p99,
      digits: 0,
    },
    {
      label: "  end-to-end p50, paced (ms)",
      value: (s) => paced(s)?.endToEndMs.p50,
      digits: 0,
    },
    {
      label: "  of which waiting on fakes p50 (ms)",
      value: (s) => paced(s)?.fakeWaitMs.p50,
      digits: 0,
    },
    {
      label: "  bot-added latency p50, burst same users (ms)",
      value: (s) => phase(s, "burst, same users")?.botAddedMs.p50,
      digits: 0,
    },
    {
      label: "first token → first visible text p50 (ms)",
      value: (s) => paced(s)?.firstVisibleMs.p50,
      digits: 0,
    },
    {
      label: "first token → first visible text p99 (ms)",
      value: (s) => paced(s)?.firstVisibleMs.p99,
      digits: 0,
      target: "≤ 100",
      meets: (v) => v <= 100,
    },
    {
      label: "getChatMember per 1,000 messages, paced",
      value: (s) => paced(s)?.getChatMemberPer1000Messages,
      digits: 0,
    },
    {
      label: "most getChatMember calls for one user (run < TTL)",
      value: (s) => s.maxGetChatMemberPerUser,
      digits: 0,
      target: "≤ 1",
      meets: (v) => v <= 1,
    },
    {
      label: "RSS idle, peak (MB)",
      value: (s) => s.memory.idlePeakRssMb,
      digits: 0,
      target: "≤ 70",
      meets: (v) => v <= 70,
    },
    {
      label: "  RSS idle: anonymous / file pages (MB)",
      value: (s) => s.memory.idleRssAnonMb,
      second: (s) => s.memory.idleRssFileMb,
      digits: 0,
    },
    {
      label: "RSS, peak with the paced users (MB)",
      value: (s) => s.memory.pacedPeakRssMb,
      digits: 0,
      target: "≤ 120",
      meets: (v) => v <= 120,
    },
    {
      label: "  RSS, peak after the bursts (MB)",
      value: (s) => s.memory.burstPeakRssMb,
      digits: 0,
    },
    {
      label: "start-up to first getUpdates, median (ms)",
      value: (s) => s.startupMs.median,
      digits: 0,
      target: "≤ 500",
      meets: (v) => v <= 500,
    },
    {
      label: "failed answers (all phases)",
      value: (s) => s.phases.reduce((n, p) => n + p.failed, 0),
      digits: 0,
      target: "0",
      meets: (v) => v === 0,
    },
    { label: "  ERROR lines in the bot's log", value: (s) => s.errorLines, digits: 0 },
    { label: "  WARNING lines in the bot's log", value: (s) => s.warningLines, digits: 0 },
    {
      label: "  failed Bot API calls (all phases)",
      value: (s) =>
        s.phases.reduce((n, p) => n + Object.values(p.failedCalls).reduce((a, b) => a + b, 0), 0),
      digits: 0,
    },
    {
      label: "  machine noise: other processes' CPU %, paced",
      value: (s) => paced(s)?.otherCpuPercent,
      digits: 0,
      noRatio: true,
    },
    {
      label: "  machine noise: other processes' CPU %, bursts",
      value: (s) => maxOverBursts(s, (p) => p.otherCpuPercent ?? 0),
      digits: 0,
      noRatio: true,
    },
    {
      label: "  bench's own CPU %, paced",
      value: (s) => paced(s)?.benchCpuPercent,
      digits: 0,
    },
    {
      label: "  bench health: its event-loop lag p99, paced (ms)",
      value: (s) => paced(s)?.benchLagMs.p99,
      digits: 0,
    },
    {
      label: "  bench health: its event-loop lag p99, bursts (ms)",
      value: (s) => maxOverBursts(s, (p) => p.benchLagMs.p99 ?? 0),
      digits: 0,
    },
  ];
}

/** The figures for these scenarios: the base ones plus a row per Bot API method seen. */
export function figures(scenarios: ScenarioResult[]): Figure[] {
  const total = (r: Record<string, number> | undefined) =>
    r ? Object.values(r).reduce((a, b) => a + b, 0) : undefined;
  const redisRow: Figure = {
    label: "  Redis commands per answer, paced",
    value: (s) => s.store === "redis" ? total(paced(s)?.redisCommandsPerAnswer) : undefined,
    digits: 1,
  };
  const methods = new Set<string>();
  for (const s of scenarios) {
    for (const m of Object.keys(paced(s)?.callsPerAnswer ?? {})) methods.add(m);
  }
  const methodRows: Figure[] = [...methods].sort().map((m) => ({
    label: `  ${m}`,
    value: (s: ScenarioResult) => paced(s)?.callsPerAnswer[m] ?? 0,
    digits: 2,
  }));
  const base = baseFigures();
  const at = base.findIndex((f) => f.label.startsWith("getChatMember per 1,000"));
  return [
    ...base.slice(0, at),
    { label: "Bot API calls per answer, paced:", value: () => undefined, digits: 0 },
    ...methodRows,
    ...(scenarios.some((s) => s.store === "redis") ? [redisRow] : []),
    ...base.slice(at),
  ];
}

/** A pair of scenario columns to divide (a / b). */
export interface Ratio {
  a: string;
  b: string;
}

/** A ratio with two significant digits at least: 0.0043, 0.52, 1.18, 12.3. */
function ratio(r: number): string {
  if (r === 0) return "0";
  if (r >= 10) return r.toFixed(1);
  return r >= 0.1 ? r.toFixed(2) : r.toPrecision(2);
}

function format(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  return v.toFixed(digits);
}

/** Renders the table; `ratios` name scenario labels. */
export function renderTable(scenarios: ScenarioResult[], ratios: Ratio[]): string {
  const rows = figures(scenarios);
  const short = (label: string) => label.replace(/ (realistic|short)$/, "");
  const header = [
    "figure",
    ...scenarios.map((s) => short(s.label)),
    ...ratios.map((r) => `${short(r.a)} / ${short(r.b)}`),
    "target",
  ];
  const byLabel = new Map(scenarios.map((s) => [s.label, s]));
  const lines = rows.map((f) => {
    const header = f.value(scenarios[0]) === undefined && f.label.endsWith(":");
    if (header) return [f.label, ...scenarios.map(() => ""), ...ratios.map(() => ""), ""];
    const cells = scenarios.map((s) => {
      const v = f.value(s);
      const mark = v !== undefined && f.meets ? (f.meets(v) ? " ✓" : " ✗") : "";
      const second = f.second ? ` / ${format(f.second(s), f.digits)}` : "";
      return format(v, f.digits) + second + mark;
    });
    const ratioCells = ratios.map((r) => {
      if (f.noRatio) return "";
      const a = f.value(byLabel.get(r.a)!);
      const b = f.value(byLabel.get(r.b)!);
      return a !== undefined && b !== undefined && b !== 0 ? `×${ratio(a / b)}` : "-";
    });
    return [f.label, ...cells, ...ratioCells, f.target ?? ""];
  });
  const table = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...table.map((r) => [...r[i]].length)));
  const pad = (text: string, i: number) =>
    i === 0
      ? text + " ".repeat(widths[i] - [...text].length)
      : " ".repeat(widths[i] - [...text].length) + text;
  const render = (r: string[]) => r.map(pad).join("  ").trimEnd();
  return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(render)].join(
    "\n",
  );
}

/** The key figures, a row per store × answer kind × revision, with the revisions' ratio. */
const SUMMARY: Figure[] = [
  { label: "CPU ms / answer", value: (s) => paced(s)?.cpuMsPerAnswer, digits: 1 },
  { label: "CPU ms / 1k tokens", value: perThousandTokens, digits: 1 },
  { label: "added p50 ms", value: (s) => paced(s)?.botAddedMs.p50, digits: 0 },
  { label: "added p99 ms", value: (s) => paced(s)?.botAddedMs.p99, digits: 0 },
  { label: "RSS paced MB", value: (s) => s.memory.pacedPeakRssMb, digits: 0 },
  { label: "RSS idle MB", value: (s) => s.memory.idlePeakRssMb, digits: 0 },
  {
    label: "API calls / answer",
    value: (s) => {
      const calls = paced(s)?.callsPerAnswer;
      return calls && Object.values(calls).reduce((a, b) => a + b, 0);
    },
    digits: 1,
  },
  { label: "failed", value: (s) => s.phases.reduce((n, p) => n + p.failed, 0), digits: 0 },
  { label: "bot CPU %", value: (s) => paced(s)?.botCpuPercent, digits: 0 },
  { label: "noise CPU %", value: (s) => paced(s)?.otherCpuPercent, digits: 0, noRatio: true },
];

/**
 * The summary table: paced-phase figures side by side for every store and answer
 * kind; with `compare`, the other revision's row and the ratio current / other below.
 */
export function renderSummary(scenarios: ScenarioResult[], compare?: string): string {
  const groups = new Map<string, ScenarioResult[]>();
  for (const s of scenarios) {
    const key = `${s.store} ${s.answers} (${s.answerTokens} tokens)`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const header = ["paced phase", ...(compare ? ["revision"] : []), ...SUMMARY.map((f) => f.label)];
  const rows: string[][] = [];
  for (const [key, list] of groups) {
    const current = list.find((s) => s.checkout === "current");
    const other = list.find((s) => s.checkout !== "current");
    const cells = (s: ScenarioResult | undefined) =>
      SUMMARY.map((f) => format(s && f.value(s), f.digits));
    if (!compare) {
      rows.push([key, ...cells(current)]);
      continue;
    }
    rows.push([key, "current", ...cells(current)]);
    rows.push(["", compare, ...cells(other)]);
    rows.push([
      "",
      "ratio",
      ...SUMMARY.map((f) => {
        if (f.noRatio) return "";
        const a = current && f.value(current);
        const b = other && f.value(other);
        return a !== undefined && b !== undefined && b !== 0 ? `×${ratio(a / b)}` : "-";
      }),
    ]);
  }
  return renderRows(header, rows, compare ? 2 : 1);
}

/**
 * With both answer kinds, splits the CPU per answer into a fixed part per answer and a
 * part per token (the line through the two points): what a longer answer costs.
 */
export function tokenCostLines(scenarios: ScenarioResult[]): string[] {
  const lines: string[] = [];
  for (const r of scenarios.filter((s) => s.answers === "realistic")) {
    const short = scenarios.find((s) =>
      s.answers === "short" && s.store === r.store && s.checkout === r.checkout
    );
    const a = paced(r)?.cpuMsPerAnswer;
    const b = short && paced(short)?.cpuMsPerAnswer;
    if (!short || a === undefined || b === undefined || r.answerTokens === short.answerTokens) {
      continue;
    }
    const perToken = (a - b) / (r.answerTokens - short.answerTokens);
    const fixed = b - perToken * short.answerTokens;
    lines.push(
      `${r.checkout} ${r.store}: about ${fixed.toFixed(1)} CPU ms per answer + ` +
        `${(1000 * perToken).toFixed(0)} ms per 1,000 tokens (line through both answer lengths)`,
    );
  }
  return lines.length ? ["", ...lines] : [];
}

/** Renders rows under a header; the first `left` columns are left-aligned. */
function renderRows(header: string[], rows: string[][], left = 1): string {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((r) => [...(r[i] ?? "")].length)));
  const pad = (text: string, i: number) =>
    i < left
      ? text + " ".repeat(widths[i] - [...text].length)
      : " ".repeat(widths[i] - [...text].length) + text;
  const render = (r: string[]) => r.map(pad).join("  ").trimEnd();
  return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(render)]
    .join("\n");
}

/** A line of a memory list: share, size, count, name and dominators. */
const memoryLine = (e: MemoryEntry) =>
  `    ${e.percent.toFixed(1).padStart(5)} %  ${e.mb.toFixed(1).padStart(7)} MB  ` +
  `${e.count !== undefined ? `×${e.count} ` : ""}${e.name}${e.path ? `  ← ${e.path}` : ""}`;

/** A short text summary of a scenario's CPU profile, also per answer. */
export function renderProfile(s: ScenarioResult): string {
  const p = s.profile!;
  const answers = s.phases.reduce((n, x) => n + x.answered, 0);
  const rows = (entries: ProfileEntry[]) =>
    entries.map((e) =>
      `    ${e.percent.toFixed(1).padStart(5)} %  ${e.ms.toFixed(0).padStart(7)} ms` +
      (answers ? `  ${(e.ms / answers).toFixed(2).padStart(6)} ms/answer` : "") + `  ${e.name}`
    );
  return [
    `CPU profile of ${s.label}: ${p.busyMs} ms busy of ${p.totalMs} ms, ${answers} answers ` +
    `(start-up included) (${p.file})`,
    ...(p.activities
      ? ["  by activity (a partition of the busy time):", ...rows(p.activities)]
      : []),
    "  self time by part:",
    ...rows(p.groups),
    "  self time charged to the caller outside Deno's runtime:",
    ...rows(p.callers),
    "  functions with the most self time:",
    ...rows(p.functions),
    ...(p.inclusive
      ? ["  functions with the most total time (self and callees):", ...rows(p.inclusive)]
      : []),
  ].join("\n");
}

/** A short text summary of what `--heap` found. */
export function renderHeap(label: string, h: HeapSummary): string {
  return [
    `Memory of ${label} with ${h.inFlight} answers in flight: RSS ${h.rssMb} MB ` +
    `(anonymous ${h.rssAnonMb}, file ${h.rssFileMb}); V8 heap ${h.heapUsedMb} used of ` +
    `${h.heapTotalMb} MB, external ${h.externalMb} MB; reachable in the snapshot ` +
    `${h.snapshotMb} MB (${h.snapshotFile})`,
    `  after a full GC: RSS ${h.afterGc.rssMb} MB, V8 heap ${h.afterGc.heapUsedMb} used of ` +
    `${h.afterGc.heapTotalMb} MB, external ${h.afterGc.externalMb} MB`,
    `  V8 heap spaces before the GC, used / size MB: ` +
    h.spaces.map((x) => `${x.name} ${x.usedMb} / ${x.sizeMb}`).join(", "),
    "  retained size by constructor (nested instances counted once):",
    ...h.classesByRetained.map(memoryLine),
    "  self size by constructor:",
    ...h.classesBySelf.map(memoryLine),
    "  single objects retaining the most (← their dominators):",
    ...h.topRetainers.map(memoryLine),
    `  allocations since the phase began still alive (sampled, ${h.sampledLiveMb} MB), by package:`,
    ...h.allocationsByPackage.map(memoryLine),
    "  by the package that called into Deno's runtime:",
    ...h.allocationsByCaller.map(memoryLine),
    "  by allocating function:",
    ...h.allocationFunctions.map(memoryLine),
  ].join("\n");
}
