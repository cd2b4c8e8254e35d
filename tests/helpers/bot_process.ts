/**
 * Starts the real bot the way the README does: the `start` task's command from
 * deno.json (same flags, same permission set), as a child process, with the
 * environment pointing at the fakes. Every variable the bot reads is passed
 * explicitly (empty when unused) so a developer's `.env` cannot leak into a test.
 */
import { fileURLToPath as fromFileUrl } from "node:url";

const ROOT = fromFileUrl(new URL("../../", import.meta.url));

/** Every variable in the permission set, so each test states all of them. */
const VARIABLES: string[] = JSON.parse(
  Deno.readTextFileSync(`${ROOT}deno.json`),
).permissions.default.env.allow as string[];

export interface BotProcess {
  /** Everything the bot printed so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves when the output matches; rejects after `timeoutMs` with the output. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Resolves with the exit code when the process ends by itself. */
  exited: Promise<number>;
}

/** The `start` task's argv, e.g. `["deno", "run", "-P", "main.ts"]`. */
export function startCommand(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  return (config.tasks.start as string).split(/\s+/);
}

/** Starts the bot with these variables (others empty); does not wait for readiness. */
export function spawnBot(env: Record<string, string>): BotProcess {
  const [cmd, ...args] = startCommand();
  const fullEnv: Record<string, string> = { NO_COLOR: "1" };
  for (const name of VARIABLES) fullEnv[name] = env[name] ?? "";
  Object.assign(fullEnv, env);
  const child = new Deno.Command(cmd === "deno" ? Deno.execPath() : cmd, {
    args,
    cwd: ROOT,
    env: fullEnv,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let text = "";
  const waiters = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const wake of waiters) wake();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await pumped;
    for (const wake of waiters) wake();
    return status.code;
  });
  let done = false;
  exited.then(() => done = true);

  return {
    output: () => text,
    exited,
    waitForOutput(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(text)) finish(resolve);
          else if (done) {
            finish(() => reject(new Error(`bot exited; ${pattern} never printed:\n${text}`)));
          }
        };
        const timer = setTimeout(
          () => finish(() => reject(new Error(`timeout waiting for ${pattern}; output:\n${text}`))),
          timeoutMs,
        );
        const finish = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal = "SIGTERM") {
      if (!done) {
        try {
          child.kill(signal);
        } catch {
          // Already gone.
        }
      }
      return await exited;
    },
  };
}
