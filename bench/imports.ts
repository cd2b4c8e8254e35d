/**
 * What each dependency costs a process that only imports it: resident memory and
 * import time. `deno run -A bench/imports.ts [--runs=N]` starts a fresh Deno for every
 * case (nothing; each package alone; all of them; all but one; the bot's
 * `src/app.ts`), imports, runs a full GC twice, waits, and reads /proc/self/status
 * and `Deno.memoryUsage()`. Medians of N runs (3) after one uncounted warm-up run, so
 * Deno's module and code caches are warm as on a restart. Linux only.
 *
 * "Alone" says what a package costs a process that has nothing else; "all but X"
 * subtracted from "all" says what leaving X out of the bot would save, with the rest
 * (and the Node compatibility layer they share) loaded anyway.
 */
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { median } from "./stats.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The bot's npm dependencies, as `deno.json` maps them and `src/` imports them. */
export const PACKAGES = [
  "grammy",
  "@grammyjs/runner",
  "@grammyjs/auto-retry",
  "@grammyjs/auto-chat-action",
  "openai",
  "ioredis",
  "marked",
  "prom-client",
  "@logtape/logtape",
  "@logtape/file",
  "@logtape/redaction",
];

/** Packages whose "all but" case is measured: the ones worth loading lazily. */
const OPTIONAL = ["ioredis", "prom-client", "marked", "openai", "grammy"];

interface Sample {
  rssMb: number;
  rssAnonMb: number;
  rssFileMb: number;
  heapUsedMb: number;
  externalMb: number;
  importMs: number;
}

/** In the child: imports `specs`, settles, prints one Sample as JSON. */
async function child(specs: string[]): Promise<void> {
  const started = performance.now();
  for (const spec of specs) await import(spec);
  const importMs = performance.now() - started;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  await new Promise((r) => setTimeout(r, 300));
  gc?.();
  const status = Deno.readTextFileSync("/proc/self/status");
  const kb = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]) / 1024;
  const memory = Deno.memoryUsage();
  const sample: Sample = {
    rssMb: kb("VmRSS"),
    rssAnonMb: kb("RssAnon"),
    rssFileMb: kb("RssFile"),
    heapUsedMb: memory.heapUsed / 1024 / 1024,
    externalMb: memory.external / 1024 / 1024,
    importMs,
  };
  console.log(JSON.stringify(sample));
}

async function measure(specs: string[]): Promise<Sample> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", "bench/imports.ts", "--child", ...specs],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  if (!out.success) {
    throw new Error(`importing ${specs.join(", ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
  return JSON.parse(text);
}

async function main(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { child: { type: "boolean" }, runs: { type: "string" } },
    allowPositionals: true,
  });
  if (values.child) return await child(positionals);
  const runs = Number(values.runs ?? 3);
  const app = new URL("../src/app.ts", import.meta.url).href;
  const cases: [string, string[]][] = [
    ["(nothing)", []],
    ...PACKAGES.map((p): [string, string[]] => [p, [p]]),
    ["all packages", PACKAGES],
    ...OPTIONAL.map((p): [string, string[]] => [
      `all but ${p}`,
      PACKAGES.filter((x) => x !== p && !(p === "grammy" && x.startsWith("@grammyjs/"))),
    ]),
    ["src/app.ts (the bot, not started)", [app]],
  ];
  await measure(PACKAGES); // warm-up: caches
  const results: [string, Sample][] = [];
  for (const [name, specs] of cases) {
    const samples: Sample[] = [];
    for (let i = 0; i < runs; i++) samples.push(await measure(specs));
    const med = (f: (s: Sample) => number) => median(samples.map(f))!;
    results.push([name, {
      rssMb: med((s) => s.rssMb),
      rssAnonMb: med((s) => s.rssAnonMb),
      rssFileMb: med((s) => s.rssFileMb),
      heapUsedMb: med((s) => s.heapUsedMb),
      externalMb: med((s) => s.externalMb),
      importMs: med((s) => s.importMs),
    }]);
    console.error(`[imports] ${name}: ${med((s) => s.rssMb).toFixed(1)} MB`);
  }
  const base = results[0][1];
  const all = results.find(([n]) => n === "all packages")![1];
  const header = [
    "imported",
    "RSS MB",
    "Δ nothing",
    "Δ anon",
    "Δ file",
    "saved vs all",
    "JS heap MB",
    "import ms",
  ];
  const rows = results.map(([name, s]) => [
    name,
    s.rssMb.toFixed(1),
    (s.rssMb - base.rssMb).toFixed(1),
    (s.rssAnonMb - base.rssAnonMb).toFixed(1),
    (s.rssFileMb - base.rssFileMb).toFixed(1),
    name.startsWith("all but") ? (all.rssMb - s.rssMb).toFixed(1) : "",
    s.heapUsedMb.toFixed(1),
    s.importMs.toFixed(0),
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...rows].map((r) => r[i].length)));
  const render = (r: string[]) =>
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join("  ");
  console.log(
    [
      `Import cost, Deno ${Deno.version.deno}, medians of ${runs} fresh processes each`,
      "",
      render(header),
      widths.map((w) => "-".repeat(w)).join("  "),
      ...rows.map(render),
    ].join("\n"),
  );
}

if (import.meta.main) await main(Deno.args);
