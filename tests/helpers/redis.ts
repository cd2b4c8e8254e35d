/**
 * A real, throw-away `redis-server` for tests: a free loopback port, no persistence,
 * and controls to stop it, crash it (SIGKILL) and bring it back on the same port.
 */

/** A running test Redis. `stop` and `kill` are safe to call twice and in any order. */
export interface TestRedis {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), then waits for the process to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port (stopping it first if running). */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers (a hung server). */
  pause(): void;
  /** SIGCONT after {@link TestRedis.pause}. */
  resume(): void;
}

const READY_TIMEOUT_MS = 5_000;

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** True when something on `port` answers `PING` with `+PONG`. */
async function answersPing(port: number): Promise<boolean> {
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } catch {
    return false;
  } finally {
    conn?.close();
  }
}

function spawn(port: number): Deno.ChildProcess {
  try {
    return new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--loglevel",
        "warning",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        "redis-server is not installed or not on PATH (apt-get install -y redis-server)",
      );
    }
    throw err;
  }
}

/**
 * Starts `redis-server` on a free loopback port and resolves once it answers PING.
 * Rejects with a clear message when `redis-server` is missing or does not come up
 * within 5 s (the process is then killed, so nothing leaks).
 */
export async function startRedis(): Promise<TestRedis> {
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  let exited: Promise<Deno.CommandStatus> | undefined;

  const halt = async (signal: Deno.Signal) => {
    if (!child || !exited) return;
    const waiting = exited;
    try {
      // A paused (SIGSTOPped) server would not act on SIGTERM until continued.
      if (signal === "SIGTERM") child.kill("SIGCONT");
      child.kill(signal);
    } catch {
      // Already exited: nothing to signal.
    }
    child = undefined;
    exited = undefined;
    await waiting;
  };

  const launch = async () => {
    child = spawn(port);
    exited = child.status;
    let done = false;
    const early = exited.then((s) => {
      done = true;
      return s;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (done) {
        const status = await early;
        child = undefined;
        exited = undefined;
        throw new Error(`redis-server on port ${port} exited early (code ${status.code})`);
      }
      if (await answersPing(port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    await halt("SIGKILL");
    throw new Error(
      `redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms`,
    );
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
    restart: async () => {
      await halt("SIGTERM");
      await launch();
    },
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
  };
}
