/**
 * Reads a V8 CPU profile (`deno run --cpu-prof`) and says where the bot's CPU time
 * went: self time by package (grammY, openai, ioredis, the bot's own files, Deno's
 * runtime, GC) and the functions with the most self time.
 */

/** Self time of one function or group. */
export interface ProfileEntry {
  name: string;
  ms: number;
  /** Share of the busy (non-idle) time, %. */
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Profile length, ms. */
  totalMs: number;
  /** Time not idle, ms. */
  busyMs: number;
  /** Self time by package; Deno's runtime and native code as their own groups. */
  groups: ProfileEntry[];
  /**
   * Self time by the package that called into Deno's runtime or native code (fetch
   * bodies, node:http, KV ops): time in the runtime is charged to its nearest caller
   * outside it, so "openai" holds the stream plumbing its SSE parsing pulls.
   */
  callers: ProfileEntry[];
  functions: ProfileEntry[];
  /**
   * Total time (self and callees) of the functions with the most: a sample counts once
   * for every distinct function on its stack.
   */
  inclusive?: ProfileEntry[];
  /** The busy time split by what the bot was doing ({@link ACTIVITIES}); sums to 100 %. */
  activities?: ProfileEntry[];
}

/**
 * What the bot does for an answer, each recognized by a function on the sampled stack
 * (the first rule that matches any frame wins, so the order matters): a partition of
 * the busy time. Async continuations have short stacks (they start at the event loop),
 * so e.g. a socket write scheduled by a Bot API call counts as "writing requests", not
 * as the draft that made the call.
 */
export const ACTIVITIES: [string, RegExp][] = [
  ["drafts: is there text to show? (#showsText → markdownToHtml)", /^#showsText /],
  ["final message (deliverAnswer: lex, split, send)", /^deliverAnswer /],
  ["Bot API: writing requests (node:http → socket writev)", /_http_outgoing|^onSocketNT |^writev$/],
  [
    "Bot API: reading responses (node:http parser, node-fetch)",
    /_http_common|_http_client|_http_incoming|IncomingMessage| node-fetch\//,
  ],
  ["Bot API: building calls (grammY, auto-retry, auto-chat-action)", / grammy\/| @grammyjs\//],
  ["OpenAI: reading the SSE stream (openai SDK)", / openai\//],
  ["answer loop (chat.ts, responses.ts, stream.ts)", / src\/bot\/| src\/assistant\//],
  ["store (Deno KV / ioredis)", / src\/store\/|op_kv| ioredis\//],
  [
    "rest of the bot (limits, turns, stats, access, logs, metrics)",
    / src\/| @logtape\/| prom-client\//,
  ],
  ["garbage collection", /^\(garbage collector\)/],
  ["V8 and native code with no JavaScript caller", /^\(program\)/],
  ["fetch bodies and web streams (Deno runtime)", /06_streams|deno_fetch|^op_read$/],
];

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** The package or part a script belongs to, e.g. "grammy", "bot src/bot/chat.ts". */
export function groupOf(frame: CallFrame, root: string): string {
  const { url, functionName } = frame;
  if (url === "") {
    if (functionName === "(garbage collector)") return "(garbage collector)";
    if (functionName === "(program)") return "(program: V8 and native)";
    if (functionName === "(idle)") return "(idle)";
    return "(native)";
  }
  const npm = /registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return npm[1];
  if (url.startsWith("ext:") || url.startsWith("node:")) return "deno runtime";
  const rootUrl = `file://${root.replace(/\/$/, "")}/`;
  if (url.startsWith(rootUrl)) {
    const path = url.slice(rootUrl.length);
    return `bot ${path.split("/").slice(0, path.startsWith("src/") ? 2 : 1).join("/")}`;
  }
  return url;
}

function shortUrl(url: string, root: string): string {
  const rootUrl = `file://${root.replace(/\/$/, "")}/`;
  if (url.startsWith(rootUrl)) return url.slice(rootUrl.length);
  const npm = /registry\.npmjs\.org\/(.+)$/.exec(url);
  return npm ? npm[1] : url;
}

/** Summarizes one `.cpuprofile`; `top` functions are listed. */
export function summarizeProfile(file: string, root: string, top = 15): ProfileSummary {
  const profile: CpuProfile = JSON.parse(Deno.readTextFileSync(file));
  const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const parents = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n.id);
  const runtime = (g: string) => g === "deno runtime" || g === "(native)";
  /** The group of the nearest caller outside the runtime, or the node's own group. */
  const callerGroup = (id: number): string => {
    const own = groupOf(frames.get(id)!, root);
    if (!runtime(own)) return own;
    for (let p = parents.get(id); p !== undefined; p = parents.get(p)) {
      const g = groupOf(frames.get(p)!, root);
      if (!runtime(g) && !g.startsWith("(")) return g;
    }
    return own;
  };
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const groups = new Map<string, number>();
  const callers = new Map<string, number>();
  const functions = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const activities = new Map<string, number>();
  const nameOf = (frame: CallFrame) =>
    frame.url === ""
      ? frame.functionName
      : `${frame.functionName || "(anonymous)"} ${shortUrl(frame.url, root)}:${
        frame.lineNumber + 1
      }`;
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = frames.get(id)!;
    totalUs += us;
    const group = groupOf(frame, root);
    if (group === "(idle)") {
      idleUs += us;
      continue;
    }
    groups.set(group, (groups.get(group) ?? 0) + us);
    const caller = callerGroup(id);
    callers.set(caller, (callers.get(caller) ?? 0) + us);
    const name = nameOf(frame);
    functions.set(name, (functions.get(name) ?? 0) + us);
    const stack: string[] = [];
    for (let n: number | undefined = id; n !== undefined; n = parents.get(n)) {
      const f = frames.get(n)!;
      if (f.functionName === "(root)") continue;
      const key = nameOf(f);
      if (stack.includes(key)) continue;
      stack.push(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    }
    const activity = ACTIVITIES.find(([, re]) => stack.some((f) => re.test(f)))?.[0] ??
      "other work in Deno's runtime";
    activities.set(activity, (activities.get(activity) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const entries = (map: Map<string, number>, limit: number) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([name, us]) => ({
      name,
      ms: Math.round(us / 100) / 10,
      percent: busyUs > 0 ? Math.round((1000 * us) / busyUs) / 10 : 0,
    }));
  return {
    file,
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    groups: entries(groups, 12),
    callers: entries(callers, 12),
    functions: entries(functions, top),
    inclusive: entries(inclusive, 2 * top),
    activities: entries(activities, ACTIVITIES.length + 1),
  };
}

/** The newest `.cpuprofile` in `dir`, or undefined. */
export function newestProfile(dir: string): string | undefined {
  let best: { path: string; mtime: number } | undefined;
  for (const entry of Deno.readDirSync(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".cpuprofile")) continue;
    const path = `${dir}/${entry.name}`;
    const mtime = Deno.statSync(path).mtime?.getTime() ?? 0;
    if (!best || mtime > best.mtime) best = { path, mtime };
  }
  return best?.path;
}
