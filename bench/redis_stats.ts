/**
 * Redis's own count of the commands it ran (`INFO commandstats`), read over a raw
 * connection so the bench needs no Redis client: how many Redis commands an answer
 * costs. Commands that Lua scripts run (`redis.call` inside EVAL) count too.
 */

/** Calls per command since the server started, e.g. `{ get: 120, eval: 40 }`. */
export async function commandStats(port: number): Promise<Record<string, number>> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode("INFO commandstats\r\n"));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(64 * 1024);
    let text = "";
    // The reply is a bulk string: "$<length>\r\n<data>\r\n".
    while (true) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      const header = /^\$(\d+)\r\n/.exec(text);
      if (header && text.length >= header[0].length + Number(header[1])) break;
    }
    const stats: Record<string, number> = {};
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (m[1] !== "info") stats[m[1]] = Number(m[2]);
    }
    return stats;
  } finally {
    conn.close();
  }
}

/** `after - before` per command, leaving out commands that did not run. */
export function statsDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0);
    if (d > 0) delta[name] = d;
  }
  return delta;
}
