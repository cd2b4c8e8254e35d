/**
 * Where the loaded bot's memory goes (`--heap`): the bench starts it with
 * `--inspect=127.0.0.1:0`, talks to V8's inspector over its WebSocket and, when the most
 * answers are in flight, reads `Deno.memoryUsage()` and /proc (RSS split into anonymous
 * and file pages), the sampling heap profiler's live allocations (by package and
 * function: who allocated what is still alive) and a full heap snapshot, written for
 * Chrome DevTools (Memory → Load) and summarized here: retained size by constructor
 * (the dominator tree, as DevTools computes it) and the biggest single retainers.
 *
 * Inspecting pauses the bot for a few seconds, so a `--heap` run measures memory only;
 * its latency and CPU figures are not comparable with a normal run.
 */
import { groupOf } from "./profile.ts";
import { sampleProcess } from "./proc.ts";

/** A Chrome DevTools Protocol session with one V8 isolate. */
export interface Inspector {
  // deno-lint-ignore no-explicit-any
  send(method: string, params?: Record<string, unknown>): Promise<any>;
  /** Calls `listener` with the params of every `method` event. */
  // deno-lint-ignore no-explicit-any
  on(method: string, listener: (params: any) => void): void;
  close(): void;
}

/** The inspector's WebSocket URL from the "Debugger listening on ws://…" line. */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/\S+)/.exec(output)?.[1];
}

/** Connects to `url` (ws://host:port/uuid). */
export function openInspector(url: string): Promise<Inspector> {
  const socket = new WebSocket(url);
  let next = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  // deno-lint-ignore no-explicit-any
  const listeners = new Map<string, ((params: any) => void)[]>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.id !== undefined) {
      const call = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) call?.reject(new Error(`inspector: ${message.error.message}`));
      else call?.resolve(message.result);
    } else {
      for (const listener of listeners.get(message.method) ?? []) listener(message.params);
    }
  };
  socket.onclose = () => {
    for (const call of pending.values()) call.reject(new Error("inspector: connection closed"));
    pending.clear();
  };
  return new Promise((resolve, reject) => {
    socket.onerror = () => reject(new Error(`inspector: cannot connect to ${url}`));
    socket.onopen = () =>
      resolve({
        send(method, params = {}) {
          const id = next++;
          socket.send(JSON.stringify({ id, method, params }));
          return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
        },
        on(method, listener) {
          listeners.set(method, [...(listeners.get(method) ?? []), listener]);
        },
        close() {
          socket.close();
        },
      });
  });
}

/** One line of a memory table. */
export interface MemoryEntry {
  name: string;
  count?: number;
  mb: number;
  /** Share of the total it is part of, %. */
  percent: number;
  /** For a retainer: its chain of dominators, nearest first. */
  path?: string;
}

/** What `--heap` found. */
export interface HeapSummary {
  /** Answers in flight (asked, not yet answered) when it was taken. */
  inFlight: number;
  /** The process at that moment (/proc/<pid>/status), MB. */
  rssMb: number;
  rssAnonMb: number;
  rssFileMb: number;
  /** `Deno.memoryUsage()` in the bot at that moment, MB. */
  heapTotalMb: number;
  heapUsedMb: number;
  externalMb: number;
  /** V8's heap spaces (`node:v8` getHeapSpaceStatistics) at that moment, MB. */
  spaces: { name: string; sizeMb: number; usedMb: number }[];
  /** The same moments after a full garbage collection (the inspector's collectGarbage). */
  afterGc: { rssMb: number; heapTotalMb: number; heapUsedMb: number; externalMb: number };
  /** The sampling heap profiler: allocations since the phase started still alive. */
  sampledLiveMb: number;
  allocationsByPackage: MemoryEntry[];
  allocationsByCaller: MemoryEntry[];
  allocationFunctions: MemoryEntry[];
  snapshotFile: string;
  /** Sum of the self sizes of the objects reachable in the snapshot, MB. */
  snapshotMb: number;
  /** Retained size by constructor, an instance inside another of its kind counted once. */
  classesByRetained: MemoryEntry[];
  classesBySelf: MemoryEntry[];
  /** Single objects retaining the most, with their dominators. */
  topRetainers: MemoryEntry[];
}

/** What the bench tells {@link startHeapWatch}. */
export interface HeapWatchOptions {
  inspector: Inspector;
  pid: number;
  ticks: number;
  dir: string;
  /** The checkout the bot runs from (to name its own files). */
  root: string;
  /** Answers in flight now. */
  inFlight: () => number;
  /** Inspect once this many answers are in flight… */
  threshold: number;
  /** …and not before this time (`Date.now()`), so the answers have text to hold. */
  notBefore: number;
  say: (line: string) => void;
}

/** A watch that inspects the bot once enough answers are in flight. */
export interface HeapWatch {
  /** Stops watching; resolves with what was found (undefined if the threshold was never met). */
  stop(): Promise<HeapSummary | undefined>;
}

/**
 * Starts the sampling heap profiler now and watches the answers in flight; at the
 * threshold it reads the memory, the profile and a snapshot (analyzed on `stop`).
 */
export async function startHeapWatch(o: HeapWatchOptions): Promise<HeapWatch> {
  await Deno.mkdir(o.dir, { recursive: true });
  await o.inspector.send("HeapProfiler.enable");
  await o.inspector.send("HeapProfiler.startSampling", { samplingInterval: 16384 });
  let taken: Promise<Omit<HeapSummary, SnapshotFields>> | undefined;
  const timer = setInterval(() => {
    if (taken || o.inFlight() < o.threshold || Date.now() < o.notBefore) return;
    clearInterval(timer);
    taken = take(o);
    taken.catch(() => {});
  }, 50);
  return {
    async stop() {
      clearInterval(timer);
      if (!taken) {
        await o.inspector.send("HeapProfiler.stopSampling").catch(() => {});
        return undefined;
      }
      const found = await taken;
      o.say(`analyzing the heap snapshot (${found.snapshotFile})`);
      return { ...found, ...analyzeSnapshot(await Deno.readFile(found.snapshotFile)) };
    },
  };
}

type SnapshotFields = "snapshotMb" | "classesByRetained" | "classesBySelf" | "topRetainers";

async function take(o: HeapWatchOptions): Promise<Omit<HeapSummary, SnapshotFields>> {
  const inFlight = o.inFlight();
  const proc = sampleProcess(o.pid, o.ticks);
  const memory = await memoryOf(o.inspector);
  await o.inspector.send("HeapProfiler.collectGarbage");
  const collected = await memoryOf(o.inspector);
  const procCollected = sampleProcess(o.pid, o.ticks);
  const { profile } = await o.inspector.send("HeapProfiler.getSamplingProfile");
  await o.inspector.send("HeapProfiler.stopSampling");
  o.say(`heap: ${inFlight} answers in flight, RSS ${proc.rssMb.toFixed(0)} MB; taking a snapshot`);
  const snapshotFile = `${o.dir}/bot-${inFlight}-in-flight.heapsnapshot`;
  const file = await Deno.open(snapshotFile, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let writing = Promise.resolve();
  o.inspector.on("HeapProfiler.addHeapSnapshotChunk", ({ chunk }: { chunk: string }) => {
    const bytes = encoder.encode(chunk);
    writing = writing.then(async () => {
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    });
  });
  await o.inspector.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  await writing;
  file.close();
  const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;
  const sampled = summarizeSampling(profile, o.root);
  return {
    inFlight,
    rssMb: mb(proc.rssMb * 1024 * 1024),
    rssAnonMb: mb(proc.rssAnonMb * 1024 * 1024),
    rssFileMb: mb(proc.rssFileMb * 1024 * 1024),
    heapTotalMb: mb(memory.heapTotal),
    heapUsedMb: mb(memory.heapUsed),
    externalMb: mb(memory.external),
    spaces: memory.spaces.filter((x) => x.space_size > 0).map((x) => ({
      name: x.space_name,
      sizeMb: mb(x.space_size),
      usedMb: mb(x.space_used_size),
    })),
    afterGc: {
      rssMb: mb(procCollected.rssMb * 1024 * 1024),
      heapTotalMb: mb(collected.heapTotal),
      heapUsedMb: mb(collected.heapUsed),
      externalMb: mb(collected.external),
    },
    ...sampled,
    snapshotFile,
  };
}

interface BotMemory {
  heapTotal: number;
  heapUsed: number;
  external: number;
  spaces: { space_name: string; space_size: number; space_used_size: number }[];
}

/** `Deno.memoryUsage()` and V8's heap spaces, read inside the bot. */
async function memoryOf(inspector: Inspector): Promise<BotMemory> {
  const { result, exceptionDetails } = await inspector.send("Runtime.evaluate", {
    expression: `(async () => {
      const spaces = await import("node:v8").then((v8) => v8.getHeapSpaceStatistics(), () => []);
      return JSON.stringify({ ...Deno.memoryUsage(), spaces });
    })()`,
    awaitPromise: true,
    returnByValue: true,
  });
  if (exceptionDetails) throw new Error(`inspector: ${exceptionDetails.text}`);
  return JSON.parse(result.value);
}

interface SamplingNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: SamplingNode[];
}

/** Live sampled allocations by package, by the package that called the runtime, by function. */
function summarizeSampling(profile: { head: SamplingNode }, root: string) {
  const byPackage = new Map<string, number>();
  const byCaller = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  const add = (map: Map<string, number>, key: string, n: number) =>
    map.set(key, (map.get(key) ?? 0) + n);
  const runtime = (g: string) => g === "deno runtime" || g === "(native)" || g.startsWith("(");
  const walk = (node: SamplingNode, caller: string | undefined) => {
    const group = groupOf(node.callFrame, root);
    const nearest = runtime(group) ? caller : group;
    if (node.selfSize > 0) {
      total += node.selfSize;
      add(byPackage, group, node.selfSize);
      add(byCaller, nearest ?? group, node.selfSize);
      const f = node.callFrame;
      const where = f.url ? ` ${shortUrl(f.url, root)}:${f.lineNumber + 1}` : "";
      add(byFunction, `${f.functionName || "(anonymous)"}${where}`, node.selfSize);
    }
    for (const child of node.children) walk(child, nearest);
  };
  walk(profile.head, undefined);
  const entries = (map: Map<string, number>, limit: number): MemoryEntry[] =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([name, bytes]) => ({
      name,
      mb: Math.round(bytes / 1024 / 102.4) / 10,
      percent: total ? Math.round((1000 * bytes) / total) / 10 : 0,
    }));
  return {
    sampledLiveMb: Math.round(total / 1024 / 102.4) / 10,
    allocationsByPackage: entries(byPackage, 12),
    allocationsByCaller: entries(byCaller, 12),
    allocationFunctions: entries(byFunction, 15),
  };
}

function shortUrl(url: string, root: string): string {
  const rootUrl = `file://${root.replace(/\/$/, "")}/`;
  if (url.startsWith(rootUrl)) return url.slice(rootUrl.length);
  const npm = /registry\.npmjs\.org\/(.+)$/.exec(url);
  return npm ? npm[1] : url;
}

// ---------------------------------------------------------------------------
// Heap snapshots

/** Reads the numbers of the JSON array that starts after `key` (e.g. `"nodes":[`). */
function numberArray(bytes: Uint8Array, key: string): Uint32Array {
  const at = indexOf(bytes, new TextEncoder().encode(key));
  if (at < 0) throw new Error(`heap snapshot: no ${key}`);
  let out = new Uint32Array(1 << 20);
  let n = 0;
  let value = 0;
  let inNumber = false;
  for (let i = at + key.length; i < bytes.length; i++) {
    const c = bytes[i];
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      inNumber = true;
      continue;
    }
    if (inNumber) {
      if (n === out.length) {
        const bigger = new Uint32Array(out.length * 2);
        bigger.set(out);
        out = bigger;
      }
      out[n++] = value;
      value = 0;
      inNumber = false;
    }
    if (c === 93) break; // ]
  }
  return out.subarray(0, n);
}

function indexOf(bytes: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = bytes.indexOf(needle[0], from); i >= 0; i = bytes.indexOf(needle[0], i + 1)) {
    for (let j = 1; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Summarizes a `.heapsnapshot` (given as bytes: a big one is longer than the longest
 * string V8 allows): self size by constructor, retained size by constructor and the
 * biggest retainers, from the dominator tree over the non-weak edges.
 */
export function analyzeSnapshot(bytes: Uint8Array): Pick<HeapSummary, SnapshotFields> {
  const decoder = new TextDecoder();
  const nodesAt = indexOf(bytes, new TextEncoder().encode(`"nodes":[`));
  const head = decoder.decode(bytes.subarray(0, nodesAt)).replace(/,\s*$/, "") + "}";
  const meta = JSON.parse(head).snapshot.meta;
  const stringsAt = indexOf(bytes, new TextEncoder().encode(`"strings":[`));
  const stringsText = decoder.decode(bytes.subarray(stringsAt + `"strings":`.length))
    .replace(/\}\s*$/, "");
  const strings: string[] = JSON.parse(stringsText);
  const nodes = numberArray(bytes, `"nodes":[`);
  const edges = numberArray(bytes, `"edges":[`);

  const nodeFields: string[] = meta.node_fields;
  const edgeFields: string[] = meta.edge_fields;
  const nodeTypes: string[] = meta.node_types[0];
  const edgeTypes: string[] = meta.edge_types[0];
  const NF = nodeFields.length;
  const EF = edgeFields.length;
  const fType = nodeFields.indexOf("type");
  const fName = nodeFields.indexOf("name");
  const fSize = nodeFields.indexOf("self_size");
  const fEdges = nodeFields.indexOf("edge_count");
  const eType = edgeFields.indexOf("type");
  const eTo = edgeFields.indexOf("to_node");
  const eName = edgeFields.indexOf("name_or_index");
  const weak = edgeTypes.indexOf("weak");
  const N = nodes.length / NF;

  const firstEdge = new Uint32Array(N + 1);
  for (let i = 0; i < N; i++) firstEdge[i + 1] = firstEdge[i] + nodes[i * NF + fEdges] * EF;

  const className = (i: number): string => {
    const type = nodeTypes[nodes[i * NF + fType]];
    const name = strings[nodes[i * NF + fName]];
    switch (type) {
      case "object":
      case "native":
        return name.split(" ")[0] === "system" ? `(system)` : name;
      case "closure":
        return "(closure)";
      case "string":
      case "concatenated string":
      case "sliced string":
        return "(string)";
      case "code":
        return "(compiled code)";
      case "array":
        return `(array${name ? ` ${name}` : ""})`;
      default:
        return `(${type})`;
    }
  };
  const classIds = new Map<string, number>();
  const classNames: string[] = [];
  const classOf = new Uint32Array(N);
  for (let i = 0; i < N; i++) {
    const name = className(i);
    let id = classIds.get(name);
    if (id === undefined) {
      id = classNames.length;
      classIds.set(name, id);
      classNames.push(name);
    }
    classOf[i] = id;
  }

  // Depth-first post-order from the root (node 0) over the non-weak edges.
  const order = new Int32Array(N).fill(-1); // post-order number
  const byOrder = new Uint32Array(N);
  const stackNode = new Uint32Array(N);
  const stackEdge = new Uint32Array(N);
  const visited = new Uint8Array(N);
  let sp = 0;
  let count = 0;
  stackNode[0] = 0;
  stackEdge[0] = firstEdge[0];
  visited[0] = 1;
  sp = 1;
  while (sp > 0) {
    const node = stackNode[sp - 1];
    let e = stackEdge[sp - 1];
    let pushed = false;
    for (; e < firstEdge[node + 1]; e += EF) {
      if (edges[e + eType] === weak) continue;
      const to = edges[e + eTo] / NF;
      if (visited[to]) continue;
      visited[to] = 1;
      stackEdge[sp - 1] = e + EF;
      stackNode[sp] = to;
      stackEdge[sp] = firstEdge[to];
      sp++;
      pushed = true;
      break;
    }
    if (pushed) continue;
    order[node] = count;
    byOrder[count] = node;
    count++;
    sp--;
  }

  // Predecessors (reachable, non-weak) as lists of post-order numbers.
  const predCount = new Uint32Array(count + 1);
  for (let i = 0; i < N; i++) {
    if (order[i] < 0) continue;
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
      if (edges[e + eType] === weak) continue;
      const to = edges[e + eTo] / NF;
      if (order[to] >= 0) predCount[order[to] + 1]++;
    }
  }
  for (let i = 0; i < count; i++) predCount[i + 1] += predCount[i];
  const preds = new Uint32Array(predCount[count]);
  const fill = predCount.slice(0, count);
  for (let i = 0; i < N; i++) {
    if (order[i] < 0) continue;
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
      if (edges[e + eType] === weak) continue;
      const to = edges[e + eTo] / NF;
      if (order[to] >= 0) preds[fill[order[to]]++] = order[i];
    }
  }

  // Immediate dominators (Cooper, Harvey and Kennedy), in post-order numbers.
  const rootOrder = count - 1;
  const idom = new Int32Array(count).fill(-1);
  idom[rootOrder] = rootOrder;
  for (let changed = true; changed;) {
    changed = false;
    for (let b = rootOrder - 1; b >= 0; b--) {
      let candidate = -1;
      for (let k = predCount[b]; k < predCount[b + 1]; k++) {
        let p = preds[k];
        if (idom[p] < 0) continue;
        if (candidate < 0) {
          candidate = p;
          continue;
        }
        let q = candidate;
        while (p !== q) {
          while (p < q) p = idom[p];
          while (q < p) q = idom[q];
        }
        candidate = p;
      }
      if (candidate >= 0 && idom[b] !== candidate) {
        idom[b] = candidate;
        changed = true;
      }
    }
  }

  // Retained sizes: children come before their dominator in post-order.
  const retained = new Float64Array(count);
  let total = 0;
  for (let b = 0; b < count; b++) {
    const size = nodes[byOrder[b] * NF + fSize];
    retained[b] += size;
    total += size;
    if (b !== rootOrder) retained[idom[b]] += retained[b];
  }

  // By constructor: self sizes, and retained sizes not counted twice for nesting.
  const classSelf = new Float64Array(classNames.length);
  const classCount = new Uint32Array(classNames.length);
  for (let b = 0; b < count; b++) {
    classSelf[classOf[byOrder[b]]] += nodes[byOrder[b] * NF + fSize];
    classCount[classOf[byOrder[b]]]++;
  }
  const childCount = new Uint32Array(count + 1);
  for (let b = 0; b < rootOrder; b++) childCount[idom[b] + 1]++;
  for (let i = 0; i < count; i++) childCount[i + 1] += childCount[i];
  const children = new Uint32Array(Math.max(0, count - 1));
  const childFill = childCount.slice(0, count);
  for (let b = 0; b < rootOrder; b++) children[childFill[idom[b]]++] = b;
  const classRetained = new Float64Array(classNames.length);
  const active = new Uint32Array(classNames.length);
  const stack: number[] = [rootOrder];
  const exiting = new Uint8Array(count);
  while (stack.length > 0) {
    const b = stack.pop()!;
    const c = classOf[byOrder[b]];
    if (exiting[b]) {
      active[c]--;
      continue;
    }
    if (active[c] === 0) classRetained[c] += retained[b];
    active[c]++;
    exiting[b] = 1;
    stack.push(b);
    for (let k = childCount[b]; k < childCount[b + 1]; k++) stack.push(children[k]);
  }

  const mb = (bytes: number) => Math.round(bytes / 1024 / 102.4) / 10;
  const pct = (bytes: number) => total ? Math.round((1000 * bytes) / total) / 10 : 0;
  const synthetic = (name: string) =>
    name === "(synthetic)" || name === "(system)" || name.startsWith("(GC roots") ||
    name === "(hidden)";
  const topClasses = (values: Float64Array): MemoryEntry[] =>
    [...values.keys()].filter((c) => !synthetic(classNames[c]))
      .sort((a, b) => values[b] - values[a]).slice(0, 20).map((c) => ({
        name: classNames[c],
        count: classCount[c],
        mb: mb(values[c]),
        percent: pct(values[c]),
      }));

  // The biggest single retainers below the roots, each with its dominator chain.
  const label = (b: number) => {
    const node = byOrder[b];
    const name = className(node);
    const type = nodeTypes[nodes[node * NF + fType]];
    const raw = strings[nodes[node * NF + fName]];
    return type === "closure" && raw ? `${raw}()` : name;
  };
  /** How `b` is referred to: "<retainer>.<property>", its dominator's edge preferred. */
  const via = (b: number): string => {
    const node = byOrder[b];
    const retainers = [idom[b], ...preds.subarray(predCount[b], predCount[b + 1])];
    for (const r of retainers) {
      const from = byOrder[r];
      for (let e = firstEdge[from]; e < firstEdge[from + 1]; e += EF) {
        if (edges[e + eTo] / NF !== node || edges[e + eType] === weak) continue;
        const type = edgeTypes[edges[e + eType]];
        const name = type === "element" || type === "hidden"
          ? `[${edges[e + eName]}]`
          : `.${strings[edges[e + eName]]}`;
        return `${label(r)}${name}`;
      }
    }
    return "?";
  };
  const depth = (b: number) => {
    let d = 0;
    for (let x = b; x !== rootOrder; x = idom[x]) d++;
    return d;
  };
  // JavaScript objects and functions only: code and its source strings hang off the roots.
  const jsTypes = new Set(["object", "closure"].map((t) => nodeTypes.indexOf(t)));
  const candidates = [...retained.keys()]
    .filter((b) =>
      b !== rootOrder && jsTypes.has(nodes[byOrder[b] * NF + fType]) &&
      !synthetic(classNames[classOf[byOrder[b]]]) && depth(b) >= 2
    )
    .sort((a, b) => retained[b] - retained[a]);
  const topRetainers: MemoryEntry[] = [];
  const shown = new Set<number>();
  for (const b of candidates) {
    if (topRetainers.length >= 15) break;
    // Skip an object whose dominator is already listed with nearly the same size.
    const parent = idom[b];
    if (shown.has(parent) && retained[b] > 0.9 * retained[parent]) {
      shown.add(b);
      continue;
    }
    shown.add(b);
    const chain: string[] = [];
    for (let x = parent, i = 0; x !== rootOrder && i < 3; x = idom[x], i++) {
      if (!synthetic(classNames[classOf[byOrder[x]]])) chain.push(via(x));
    }
    topRetainers.push({
      name: `${label(b)} (${via(b)})`,
      mb: mb(retained[b]),
      percent: pct(retained[b]),
      path: chain.join(" ← "),
    });
  }

  return {
    snapshotMb: mb(total),
    classesByRetained: topClasses(classRetained),
    classesBySelf: topClasses(classSelf),
    topRetainers,
  };
}

/** Lets the bot's inspector go (the bot keeps running). */
export function closeInspector(inspector: Inspector | undefined): void {
  try {
    inspector?.close();
  } catch {
    // Already closed.
  }
}
