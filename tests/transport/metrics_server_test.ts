/**
 * The METRICS_PORT server on a real loopback port: /metrics and /healthz, nothing else.
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { startMetricsServer } from "../../src/transport/metrics_server.ts";

Deno.test("metrics server: serves /metrics and /healthz without a token; other paths 404", async () => {
  const server = startMetricsServer(
    0,
    { render: () => Promise.resolve("bot_up 1\n"), contentType: "text/plain; version=0.0.4" },
    getLogger(["test", "metrics"]),
  );
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const metrics = await fetch(`${base}/metrics`);
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers.get("content-type"), "text/plain; version=0.0.4");
    assert.equal(await metrics.text(), "bot_up 1\n");
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    const other = await fetch(`${base}/tg/hook`, { method: "POST", body: "{}" });
    assert.equal(other.status, 405);
    await other.body?.cancel();
    const unknown = await fetch(`${base}/nothing`);
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
  } finally {
    await server.stop();
  }
});
