/**
 * `deno task bench`: what the bot costs and how fast answers reach people. Runs the
 * real bot (started as the README starts it) against the fake Telegram and OpenAI
 * servers with set latencies, with the embedded store and/or a real redis-server, and
 * optionally a second git revision; prints a table and writes JSON to bench/results/.
 * See bench/README.md for what each figure means.
 */
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { parseOptions, stamp, USAGE, UsageRequest } from "./options.ts";
import { clockTicks, gitRevision, machineInfo } from "./proc.ts";
import {
  type Ratio,
  renderHeap,
  renderProfile,
  renderSummary,
  renderTable,
  tokenCostLines,
} from "./report.ts";
import { type BotCheckout, runScenario, type ScenarioResult, settingsFor } from "./scenario.ts";
import { addWorktree, type Worktree } from "./worktree.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, "");
const RESULTS = `${ROOT}/bench/results`;

/** Runs the benchmark with these arguments; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(args, RESULTS);
  } catch (error) {
    if (error instanceof UsageRequest) {
      console.log(USAGE);
      return 0;
    }
    console.error(`bench: ${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (Deno.build.os !== "linux") {
    console.error("bench: reads CPU time and memory from /proc, so it runs on Linux only");
    return 2;
  }
  const { settings } = options;
  const say = (line: string) => console.error(`[bench] ${line}`);
  const started = new Date();
  const machine = machineInfo();
  const current: BotCheckout = { name: "current", root: ROOT, revision: await gitRevision(ROOT) };
  const checkouts: BotCheckout[] = [current];
  let worktree: Worktree | undefined;
  const scenarios: ScenarioResult[] = [];
  try {
    if (options.compare) {
      worktree = await addWorktree(ROOT, options.compare);
      say(`${options.compare} checked out at ${worktree.root}`);
      checkouts.push({
        name: options.compare,
        root: worktree.root,
        revision: { commit: worktree.commit, dirty: false },
      });
    }
    const ticks = await clockTicks();
    const profRoot = settings.cpuProfDir ? resolve(settings.cpuProfDir) : undefined;
    const heapRoot = settings.heapDir ? resolve(settings.heapDir) : undefined;
    say(
      `${settings.users} users × ${settings.messagesPerUser} messages; answers: ` +
        options.answers.map((k) =>
          `${k} (${settingsFor(settings, k).answerTokens} tokens, bursts of ` +
          `${settingsFor(settings, k).burstUsers})`
        ).join(", ") + `; stores: ${options.stores.join(", ")}` +
        (options.compare ? `; revisions: current, ${options.compare}` : ""),
    );
    // Revisions alternate innermost, so a noisy moment of the machine hits both alike.
    for (const store of options.stores) {
      for (const kind of options.answers) {
        for (const checkout of checkouts) {
          const dir = `${checkout.name.replace(/[^\w.-]/g, "_")}-${store}-${kind}`;
          const scenario = {
            ...settingsFor(settings, kind),
            cpuProfDir: profRoot ? `${profRoot}/${dir}` : undefined,
            heapDir: heapRoot ? `${heapRoot}/${dir}` : undefined,
          };
          scenarios.push(await runScenario(checkout, store, scenario, ticks, say));
        }
      }
    }
  } finally {
    await worktree?.remove();
  }

  const ratios: Ratio[] = [];
  for (const kind of options.answers) {
    if (options.compare) {
      for (const store of options.stores) {
        ratios.push({ a: `current ${store} ${kind}`, b: `${options.compare} ${store} ${kind}` });
      }
    } else if (options.stores.length === 2) {
      ratios.push({ a: `current redis ${kind}`, b: `current kv ${kind}` });
    }
  }

  const s = settings;
  const rev = current.revision;
  console.log(
    [
      `Bot benchmark, ${started.toISOString()}`,
      `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGb} GB, ` +
      `${machine.os}, Linux ${machine.kernel}, Deno ${machine.deno}`,
      `revision: ${rev.commit.slice(0, 12)}${rev.dirty ? " + uncommitted changes" : ""}` +
      (worktree ? `; compared with ${options.compare} (${worktree.commit.slice(0, 12)})` : ""),
      `load: ${s.users} users × ${s.messagesPerUser} messages, think ${s.thinkMs[0]}–` +
      `${s.thinkMs[1]} ms, ramp ${s.rampMs} ms; bursts of ${s.burstUsers} users; ` +
      `users send ${s.input === "voice" ? "voice notes" : "texts"}; OPENAI_API=${s.openaiApi}`,
      `fakes: Telegram ${s.telegramLatencyMs} ms per call; OpenAI ${s.timeToFirstTokenMs} ms ` +
      `to first token, ${s.tokensPerSecond ? `${s.tokensPerSecond} tokens/s` : "unpaced"}; ` +
      `answers: ` +
      options.answers.map((k) => `${k} ${settingsFor(s, k).answerTokens} tokens`).join(", "),
      "",
      renderSummary(scenarios, options.compare),
      ...tokenCostLines(scenarios),
      "",
      ...options.answers.flatMap((kind) => {
        const own = scenarios.filter((x) => x.answers === kind);
        const tokens = own[0]?.answerTokens;
        return [
          `${
            kind === "realistic" ? "Realistic" : "Short"
          } answers (${tokens} tokens), all figures:`,
          "",
          renderTable(own, ratios.filter((r) => r.a.endsWith(` ${kind}`))),
          "",
        ];
      }),
    ].join("\n"),
  );
  const noisy = scenarios.flatMap((x) =>
    x.phases.filter((p) => p.otherCpuPercent > 25).map((p) =>
      `${x.label} ${p.name}: ${p.otherCpuPercent.toFixed(0)} %`
    )
  );
  if (noisy.length > 0) {
    console.log(
      `Other processes used more than a quarter of a core during (% of one core):\n  ` +
        `${noisy.join("\n  ")}\nAbsolute figures of those phases are noisy: judge by ` +
        `the ratios of one --compare run, or run again on a quiet machine.\n`,
    );
  }
  for (const scenario of scenarios) {
    if (scenario.profile) console.log(`${renderProfile(scenario)}\n`);
    if (scenario.heap) console.log(`${renderHeap(scenario.label, scenario.heap)}\n`);
    if (scenario.problems.length > 0) {
      console.log(`${scenario.label}: the bot logged (numbers as N):`);
      for (const p of scenario.problems) console.log(`  ${p}`);
      console.log("");
    }
    if (scenario.outputTail && scenario.exitCode !== 0) {
      console.log(`${scenario.label}: the bot's output ended with:\n${scenario.outputTail}\n`);
    }
  }

  const report = {
    version: 2,
    createdAt: started.toISOString(),
    machine,
    revision: rev,
    compare: worktree ? { rev: options.compare, commit: worktree.commit } : undefined,
    settings: { ...s, stores: options.stores, answers: options.answers },
    scenarios,
    ratios,
  };
  await Deno.mkdir(options.outDir, { recursive: true });
  const file = `${options.outDir}/${stamp(started)}${options.smoke ? "-smoke" : ""}.json`;
  const json = JSON.stringify(report, null, 2) + "\n";
  await Deno.writeTextFile(file, json);
  if (options.writeLatest) await Deno.writeTextFile(`${options.outDir}/latest.json`, json);
  say(`results: ${file}${options.writeLatest ? " (and latest.json)" : ""}`);
  const broken = scenarios.some((x) => x.exitCode !== 0 || x.phases.some((p) => p.answered === 0));
  return broken ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
