/**
 * Starts the bot under test exactly as the README does: the `start` task's command from
 * the checkout's own deno.json (same `-P` permission set), with the checkout as the
 * working directory. Unlike tests/helpers/bot_process.ts it takes the checkout (so a
 * second git revision can run from a worktree), extra Deno flags (`--cpu-prof`) and
 * exposes the pid, which the bench needs for /proc.
 */

/** A running bot. */
export interface BenchBot {
  pid: number;
  /** `Date.now()` just before the process was spawned. */
  spawnedAt: number;
  /** The command line that was run, for the report. */
  argv: string[];
  /** The last 256 KB the bot printed (stdout and stderr interleaved). */
  output(): string;
  /** ERROR/FATAL and WARNING lines printed so far (all of them, not only the kept tail). */
  logCounts(): { errors: number; warnings: number };
  /** Up to 5 distinct warning or error lines, timestamps cut and numbers shown as N. */
  problems(): string[];
  /** Sends SIGTERM (the README's clean stop) and resolves with the exit code. */
  stop(): Promise<number>;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number>;
}

const KEEP_OUTPUT = 256 * 1024;

/** The `start` task of `<root>/deno.json` as argv, with `extraFlags` after `run`. */
export function startArgv(root: string, extraFlags: string[] = []): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
  const argv = String(config.tasks?.start ?? "").split(/\s+/).filter(Boolean);
  const run = argv.indexOf("run");
  if (argv[0] !== "deno" || run < 0) {
    throw new Error(`the start task of ${root}/deno.json is not "deno run …": ${argv.join(" ")}`);
  }
  argv.splice(run + 1, 0, ...extraFlags);
  return argv;
}

/** The variables the checkout's permission set names (each is passed, empty when unused). */
function permittedVariables(root: string): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
  const allow = config.permissions?.default?.env?.allow;
  return Array.isArray(allow) ? allow.map(String) : [];
}

/**
 * Spawns the bot in `root` with `env` (every other variable of its permission set set
 * empty, so a developer's `.env` cannot leak in). Does not wait for readiness.
 */
export function spawnBenchBot(
  root: string,
  env: Record<string, string>,
  extraFlags: string[] = [],
): BenchBot {
  const argv = startArgv(root, extraFlags);
  const fullEnv: Record<string, string> = { NO_COLOR: "1" };
  for (const name of permittedVariables(root)) fullEnv[name] = "";
  Object.assign(fullEnv, env);
  const spawnedAt = Date.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: argv.slice(1),
    cwd: root,
    env: fullEnv,
    clearEnv: false,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let text = "";
  const counts = { errors: 0, warnings: 0 };
  const problems = new Set<string>();
  const scan = (line: string) => {
    const error = /\[(ERR|FTL)\]/.test(line);
    const warning = /\[WRN\]/.test(line);
    if (error) counts.errors++;
    if (warning) counts.warnings++;
    if ((error || warning) && problems.size < 5) {
      problems.add(line.replace(/^\S+ \S+ \S+ /, "").replace(/\d+/g, "N"));
    }
  };
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (text.length > 2 * KEEP_OUTPUT) text = text.slice(-KEEP_OUTPUT);
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      lines.forEach(scan);
    }
    if (partial) scan(partial);
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let done = false;
  const exited = child.status.then(async (status) => {
    done = true;
    await pumped;
    return status.code;
  });
  return {
    pid: child.pid,
    spawnedAt,
    argv,
    output: () => text.slice(-KEEP_OUTPUT),
    logCounts: () => ({ ...counts }),
    problems: () => [...problems],
    exited,
    async stop() {
      if (!done) {
        try {
          child.kill("SIGTERM");
        } catch {
          // Already gone.
        }
      }
      return await exited;
    },
  };
}
